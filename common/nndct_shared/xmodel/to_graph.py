"""Convert an XGraph (a quantizer-written xmodel) to the neutral graph IR.

An xmodel spells quantization as explicit `fix` ops and parameters as `const` ops. The neutral
IR attaches both to the node they belong to, which is the form the quantizer works in:

  * a `const` op becomes a parameter Tensor (numpy data) in the `params` of each consumer,
    under the role of the arg it feeds (`weights`, `bias`, ...; matmul's second `input` is
    `weight`); the const's fix goes to `tensor.attrs["fix"]`;
  * a `fix` op is folded into its producer: `node.attrs["fix"] = (bit_width, fix_point)`,
    plus `fix_round_mode` and `fix_if_signed`; consumers of the fix read the producer's
    tensor. A second fix on an already-quantized tensor stays a `fix` node.
"""
from __future__ import annotations

from ..graph import Graph, Node, Tensor
from .xgraph import XGraph, XOp

FIX_OP_TYPE = "fix"
CONST_OP_TYPE = "const"

#: (op type, arg name, index in the arg) -> param role, where the arg name is not the role.
PARAM_ROLES: dict[tuple[str, str, int], str] = {("matmul", "input", 1): "weight"}


def _fix_facts(fix_op: XOp) -> dict[str, object]:
    bit_width, fix_point = fix_op.fix or (None, None)
    return {
        "fix": (bit_width, fix_point),
        "fix_round_mode": fix_op.attrs.get("round_mode"),
        "fix_if_signed": fix_op.attrs.get("if_signed"),
    }


def _param_role(op: XOp, arg: str, index: int, count: int) -> str:
    role = PARAM_ROLES.get((op.type, arg, index))
    if role is not None:
        return role
    return arg if count == 1 else f"{arg}{index}"


def xgraph_to_graph(xgraph: XGraph) -> Graph:
    """The neutral Graph of `xgraph` (see the module docstring for the mapping)."""
    order = xgraph.topological_order()
    graph = Graph(xgraph.name, attrs=dict(xgraph.attrs))

    params: dict[str, Tensor] = {}       # const op name (or its fix's name) -> param tensor
    alias: dict[str, str] = {}           # folded fix op name -> tensor it stands for
    output_fix: dict[str, XOp] = {}      # producer op name -> its folded fix op
    for op in order:
        if op.type == CONST_OP_TYPE:
            params[op.name] = Tensor(op.name, data=op.const_array())
        elif op.type == FIX_OP_TYPE and len(op.input_ops) == 1:
            producer = xgraph.op(op.input_ops[0])
            if producer.type == CONST_OP_TYPE:
                if "fix" not in params[producer.name].attrs:
                    params[producer.name].attrs.update(_fix_facts(op))
                    params[op.name] = params[producer.name]
            elif producer.type != FIX_OP_TYPE and producer.name not in output_fix:
                output_fix[producer.name] = op
                alias[op.name] = producer.name

    consumed = {p for op in order for p in op.input_ops}
    used_params = {id(params[name]) for name in consumed if name in params}
    for op in order:
        if op.name in alias or (op.name in params and op.type != CONST_OP_TYPE):
            continue  # folded into its producer
        if op.type == CONST_OP_TYPE:
            if id(params[op.name]) not in used_params:  # a constant nobody reads stays a node
                graph.add(op.name, CONST_OP_TYPE, params={"value": params[op.name]},
                          shape=op.shape)
            continue
        inputs: list[str] = []
        node_params: dict[str, Tensor] = {}
        for arg, producers in op.inputs.items():
            for index, producer in enumerate(producers):
                if producer in params:
                    node_params[_param_role(op, arg, index, len(producers))] = params[producer]
                else:
                    inputs.append(alias.get(producer, producer))
        attrs = {name: value for name, value in op.attrs.items()}
        if op.name in output_fix:
            attrs.update(_fix_facts(output_fix[op.name]))
        node = graph.add_node(Node(op.name, op.type, attrs, inputs, None, node_params))
        graph.set_tensor(Tensor(node.outputs[0], tuple(op.shape), "float32"))

    returns = [alias.get(name, name) for name in xgraph.return_ops]
    if returns:
        graph.set_outputs(returns)
    return graph
