"""`<Model>.py`: the converted model as Python source, written to output_dir and loaded back.

The seeds' format: one `py_nndct.nn` module per graph node, `self.module_<i>`, the node name in
a trailing comment, and a `forward(self, *args)` that calls them in topological order. The
quantizer builds `quant_model` from this very source, so the file users read is the model that
runs (params are loaded from the captured graph afterwards).

Names come from the user (a class name may hold a newline), so nothing of them reaches the
source raw: the class name is reduced to `[0-9A-Za-z_]` and node names in comments are escaped
(`nndct_shared.source_text`); constructor arguments are Python literals, written from the value
that `ast.literal_eval` read back. And the model is built from the source in memory
(`load_source`), never by importing the file from output_dir, where another process may have
written its own `<Model>.py` meanwhile.
"""
from __future__ import annotations

import ast
import itertools
import linecache
import sys
import types
from pathlib import Path
from typing import Any

from nndct_shared.graph import Graph, Node
from nndct_shared.messages import error
from nndct_shared.output_dir import staged_export
from nndct_shared.source_text import python_class_name, source_text

__all__ = ["class_name_for", "generate_source", "load_generated", "load_source", "module_args",
           "state_dict_of", "write_source"]

_CLASSES = {
    "input": "Input", "linear": "Linear", "conv1d": "Conv1d", "conv2d": "Conv2d",
    "conv_transpose2d": "ConvTranspose2d", "scale": "Scale", "relu": "ReLU", "relu6": "ReLU6",
    "leaky_relu": "LeakyReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "hardswish": "Hardswish",
    "max_pool1d": "MaxPool1d", "max_pool2d": "MaxPool2d", "avg_pool1d": "AvgPool1d",
    "avg_pool2d": "AvgPool2d", "adaptive_avg_pool1d": "AdaptiveAvgPool1d",
    "adaptive_avg_pool2d": "AdaptiveAvgPool2d", "adaptive_max_pool1d": "AdaptiveMaxPool1d",
    "adaptive_max_pool2d": "AdaptiveMaxPool2d", "add": "Add", "sub": "Sub", "mul": "Mul",
    "concat": "Cat", "flatten": "Flatten", "reshape": "Reshape", "mean": "Mean",
    "softmax": "Softmax", "custom": "Custom",
}


def module_args(graph: Graph, node: Node) -> dict[str, Any]:
    """Constructor arguments of the node's module (Python literals)."""
    a, p = node.attrs, node.params
    op = node.op_type
    if op == "linear":
        w = p["weight"].shape
        return {"in_features": w[1], "out_features": w[0], "bias": "bias" in p}
    if op in ("conv1d", "conv2d"):
        w = p["weight"].shape
        return {"in_channels": w[1] * a["groups"], "out_channels": w[0], "kernel_size": a["kernel"],
                "stride": a["stride"], "padding": a["padding"], "dilation": a["dilation"],
                "groups": a["groups"], "bias": "bias" in p}
    if op == "conv_transpose2d":
        w = p["weight"].shape
        return {"in_channels": w[0], "out_channels": w[1] * a["groups"], "kernel_size": a["kernel"],
                "stride": a["stride"], "padding": a["padding"], "output_padding": a["output_padding"],
                "dilation": a["dilation"], "groups": a["groups"], "bias": "bias" in p}
    if op == "scale":
        return {"num_features": p["weight"].shape[0], "axis": a["axis"]}
    if op == "leaky_relu":
        return {"negative_slope": a["alpha"]}
    if op in ("max_pool1d", "max_pool2d"):
        return {"kernel_size": a["kernel"], "stride": a["stride"], "padding": a["padding"],
                "ceil_mode": a["ceil_mode"]}
    if op in ("avg_pool1d", "avg_pool2d"):
        return {"kernel_size": a["kernel"], "stride": a["stride"], "padding": a["padding"],
                "ceil_mode": a["ceil_mode"], "count_include_pad": a["count_include_pad"]}
    if op.startswith(("adaptive_avg_pool", "adaptive_max_pool")):
        return {"output_size": a["output_size"]}
    if op in ("add", "sub", "mul"):
        if "other" in p:
            return {"other_index": a["other_index"], "other_shape": p["other"].shape}
        return {}
    if op == "concat":
        return {"dim": a["axis"]}
    if op == "flatten":
        return {"start_dim": a["start_dim"], "end_dim": a["end_dim"]}
    if op == "reshape":
        in_shape = graph.tensor(node.inputs[0]).shape
        shape = tuple(a["shape"])
        return {"shape": shape, "batch_dim": bool(shape and in_shape and shape[0] == in_shape[0])}
    if op == "mean":
        return {"dim": a["dims"], "keepdim": a["keepdim"]}
    if op == "softmax":
        return {"dim": a["dim"]}
    if op == "custom":
        attrs = {k: v for k, v in a.items() if k != "op_name"}
        return {"op_type": a["op_name"], "attrs": attrs}
    return {}


def _literal(value: Any, what: str) -> str:
    """The source of `value` as a Python literal: the repr of what `ast.literal_eval` reads from
    its repr, so only literal syntax (no name, call or comment of a custom repr) is written."""
    text = repr(value)
    try:
        return repr(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise error("CNN_UNSUPPORTED_OP", op=what, source="the converted model",
                    detail=f" (value {source_text(text)} cannot be written to <Model>.py)") from None


def class_name_for(name: str) -> str:
    """A valid Python class name for a model named `name` (`nndct_shared.source_text.
    python_class_name`: `[0-9A-Za-z_]` only, bounded, so `<class>.py` stays inside output_dir)."""
    return python_class_name(name)


def generate_source(graph: Graph, class_name: str) -> tuple[str, list[Node]]:
    """(source text, nodes in module order): module_i is the i-th node of the topological order."""
    order = graph.topological_order()
    index = {node.name: i for i, node in enumerate(order)}
    lines = [
        "# GENERATED BY pytorch_nndct, DO NOT EDIT!",
        "",
        "import torch",
        "import pytorch_nndct.nn",
        "import pytorch_nndct as py_nndct",
        "",
        "",
        f"class {class_name}(torch.nn.Module):",
        "    def __init__(self):",
        f"        super({class_name}, self).__init__()",
    ]
    for i, node in enumerate(order):
        args = ", ".join(f"{k}={_literal(v, node.name)}" for k, v in module_args(graph, node).items())
        lines.append(f"        self.module_{i} = py_nndct.nn.{_CLASSES[node.op_type]}({args}) #{source_text(node.name)}")
    lines += ["", "    def forward(self, *args):"]
    inputs = 0
    for i, node in enumerate(order):
        if node.op_type == "input":
            lines.append(f"        output_module_{i} = self.module_{i}(input=args[{inputs}])")
            inputs += 1
            continue
        operands = ", ".join(f"output_module_{index[graph.producer(t).name]}" for t in node.inputs)
        lines.append(f"        output_module_{i} = self.module_{i}({operands})")
    outs = [f"output_module_{index[n.name]}" for n in graph.outputs]
    lines.append(f"        return {outs[0] if len(outs) == 1 else '(' + ', '.join(outs) + ')'}")
    return "\n".join(lines) + "\n", order


def state_dict_of(order: list[Node]) -> dict[str, Any]:
    """{module_<i>.<role>: numpy data} of every param, for load_state_dict."""
    import torch

    return {f"module_{i}.{role}": torch.from_numpy(t.data.copy())
            for i, node in enumerate(order) for role, t in node.params.items()}


_loaded = itertools.count()


def load_source(source: str, class_name: str, shown_as: str | Path) -> type:
    """The class `class_name` defined by `source`, executed from memory in a fresh module (no
    file is read, so what another process writes meanwhile cannot change it). Tracebacks show
    the source under the name `<shown_as (in memory #n)>`."""
    number = next(_loaded)
    module_name = f"_nndct_generated_{class_name}_{number}"
    filename = f"<{shown_as} (in memory #{number})>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module  # pickling and TorchScript look the class's module up
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our generated source
    return getattr(module, class_name)


def load_generated(path: Path, class_name: str) -> type:
    """The class `class_name` of the generated file `path` (read once, then `load_source`); for
    a file in a private directory."""
    return load_source(Path(path).read_text(encoding="utf-8"), class_name, path)


def write_source(output_dir: Path, class_name: str, source: str) -> Path:
    """Write `<output_dir>/<class_name>.py` as one export, creating output_dir if needed; an
    unusable output_dir raises OUTPUT_DIR and leaves nothing behind (`staged_export`)."""
    with staged_export(output_dir) as unit:
        return unit.write_bytes(unit.root / f"{class_name}.py", source.encode("utf-8"))
