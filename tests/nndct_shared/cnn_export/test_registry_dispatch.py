"""The back ends dispatch through the op registry: the reference executor, the xmodel writer and
evaluator, the ONNX exporter, the validator and the Inspector call each op's entry, and an entry
changed in one place changes what they compute. The test nets cover every registered op."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from nndct_shared.cnn_export import (build_cnn_xgraph, build_onnx_model, evaluate_xgraph,
                                     run_reference, validate_cnn_graph)
from nndct_shared.cnn_export.flatten_fold import torch_value
from nndct_shared.graph import Graph, Tensor, to_op_name
from nndct_shared.graph.ops import all_ops, get_op, xir_owner
from nndct_shared.inspector import inspect_graph
from nndct_shared.messages import UnsupportedOpError

#: The xmodel's own plumbing, evaluated by the evaluator itself.
PLUMBING = {"data", "const", "fix", "transpose"}


def _custom_graph() -> Graph:
    """input -> custom 'double' -> relu -> adaptive avg pool 3x3 -> 2x2 (windows of different
    sizes: an `aten::` op in the xmodel). Float: the custom op and the pool have no DPU form."""
    g = Graph("Cust")
    g.add("input_0", "input", shape=(1, 2, 3, 3))
    g.add("Cust::twice", "custom", ["input_0"], attrs={"op_name": "double", "factor": 2.0},
          shape=(1, 2, 3, 3))
    g.add("Cust::relu", "relu", ["Cust::twice"], shape=(1, 2, 3, 3))
    g.add("Cust::pool", "adaptive_avg_pool2d", ["Cust::relu"], attrs={"output_size": (2, 2)},
          shape=(1, 2, 2, 2))
    return g


def _double(xs, attrs):
    return xs[0] * np.float32(attrs["factor"])


@pytest.fixture(scope="module")
def graphs(nets, adaptive_max_graphs) -> dict[str, Graph]:
    return {**nets, "amax": adaptive_max_graphs[4], "custom": _custom_graph()}


@pytest.fixture(scope="module")
def inputs(net_inputs, digits) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {**{k: v[:2] for k, v in net_inputs.items()}, "amax": digits[300:302, :, :4, :4],
            "custom": rng.standard_normal((2, 2, 3, 3)).astype(np.float32)}


def _spy(monkeypatch, facet: str) -> dict[str, int]:
    """Count the calls of `facet` on every entry (the entries keep working)."""
    calls: dict[str, int] = defaultdict(int)
    for name, op in all_ops().items():
        original = getattr(op, facet)

        def wrapper(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(op, facet, wrapper)
    return calls


def test_the_test_nets_cover_every_registered_op(graphs):
    used = {node.op_type for g in graphs.values() for node in g.nodes}
    assert used == set(all_ops())


def test_the_reference_executor_and_the_validator_call_every_op_entry(graphs, inputs, monkeypatch):
    reference = _spy(monkeypatch, "reference")
    check = _spy(monkeypatch, "check")
    for key, graph in graphs.items():
        run_reference(graph, {"input_0": inputs[key]}, custom_ops={"double": _double})
    assert set(reference) == set(all_ops()) and set(check) == set(all_ops())


def test_changing_an_entry_changes_the_reference_result(graphs, inputs, monkeypatch):
    graph, x = graphs["custom"], inputs["custom"]
    before = run_reference(graph, {"input_0": x}, custom_ops={"double": _double})["Cust::relu"]
    np.testing.assert_array_equal(before, np.maximum(2 * x, 0))
    monkeypatch.setattr(get_op("relu"), "compute", lambda v: np.minimum(v, np.float32(0)))
    after = run_reference(graph, {"input_0": x}, custom_ops={"double": _double})["Cust::relu"]
    np.testing.assert_array_equal(after, np.minimum(2 * x, 0))


def test_the_xmodel_writer_and_evaluator_dispatch_through_the_registry(graphs, inputs, monkeypatch):
    """Every op of every written xmodel is plumbing or evaluated by the entry that owns its
    type (which is called), and the values equal the reference exactly."""
    writer = _spy(monkeypatch, "to_xmodel")
    evaluator = _spy(monkeypatch, "eval_xir")
    written_types: set[str] = set()
    for key, graph in graphs.items():
        xgraph = build_cnn_xgraph(graph)
        types = {op.type for op in xgraph.topological_order()}
        written_types |= types
        custom = {"double": _double}
        for t in types - PLUMBING - {"double"}:
            assert xir_owner(t) is not None, f"no entry evaluates XIR type {t!r}"
        x = inputs[key][:1]
        got = evaluate_xgraph(xgraph, {"input_0": x}, custom)
        ref = run_reference(graph, {"input_0": x}, custom)
        for node in graph.nodes:
            op = to_op_name(node.name) + ("_fix" if node.attrs.get("fix") else "")
            np.testing.assert_array_equal(torch_value(graph, node, got[op]), ref[node.outputs[0]],
                                          err_msg=node.name)
    assert set(writer) == set(all_ops())
    owners = {xir_owner(t).name for t in written_types if xir_owner(t) is not None}
    assert set(evaluator) == owners
    assert owners == {op.name for op in all_ops().values() if op.xir_types}


def test_the_onnx_exporter_dispatches_through_the_registry(graphs, monkeypatch):
    pytest.importorskip("onnx")
    calls = _spy(monkeypatch, "to_onnx")
    for key, graph in graphs.items():
        if key in ("custom", "conv1d"):          # a custom op, a non-uniform adaptive pool: the
            with pytest.raises(UnsupportedOpError, match=r"\(adaptive_avg_pool1d\)|\(custom\)"):
                build_onnx_model(graph)          # entry refuses (EXPORT_UNSUPPORTED names it)
        else:
            build_onnx_model(graph)
    assert set(calls) == set(all_ops())


def test_the_inspector_dispatches_through_the_registry(graphs, monkeypatch):
    rules = _spy(monkeypatch, "dpu_rule")
    for graph in graphs.values():
        validate_cnn_graph(graph)
        inspect_graph(graph, "DPUCZDX8G_ISA1_B4096")
    assert set(rules) == set(all_ops()) - {"custom"}    # custom is refused before its rule


def test_an_entry_rule_decides_the_device(graphs, monkeypatch):
    graph = graphs["lenet"]
    relu = next(n for n in graph.nodes if n.op_type == "relu")
    assert inspect_graph(graph, "DPUCZDX8G_ISA1_B4096").device_of(relu.name) == "DPU"
    monkeypatch.setattr(get_op("relu"), "dpu_rule", lambda g, n, t: "no relu today.")
    result = inspect_graph(graph, "DPUCZDX8G_ISA1_B4096")
    assert result.device_of(relu.name) == "CPU"
    assert result.assignments[relu.name].reason == "no relu today."


def test_a_param_of_the_wrong_role_is_refused_by_the_entry_contract():
    g = Graph("Bad")
    g.add("input_0", "input", shape=(1, 3))
    g.add("Bad::relu", "relu", ["input_0"], params={"weight": Tensor("w", data=np.ones(3, np.float32))},
          shape=(1, 3))
    with pytest.raises(Exception, match="param role 'weight' is not allowed for relu"):
        validate_cnn_graph(g)
