"""`<Model>.py`: the converted model as Python source, written to output_dir and loaded back.

The seeds' format: one `py_nndct.nn` module per graph node, `self.module_<i>`, the node name in
a trailing comment, and a `forward(self, *args)` that calls them in topological order. The
quantizer imports this very file to build `quant_model`, so the file users read is the model
that runs (params are loaded from the captured graph afterwards).
"""
from __future__ import annotations

import ast
import importlib.util
import keyword
import sys
from pathlib import Path
from typing import Any

from nndct_shared.deploy_check import dump_file_stem
from nndct_shared.graph import Graph, Node
from nndct_shared.messages import error
from nndct_shared.output_dir import staged_export

__all__ = ["class_name_for", "generate_source", "load_generated", "module_args", "state_dict_of",
           "write_source"]

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
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise error("CNN_UNSUPPORTED_OP", op=what, source="the converted model",
                    detail=f" (value {text} cannot be written to <Model>.py)") from None
    return text


def class_name_for(name: str) -> str:
    """A valid Python class name for a model named `name`: its file stem (`dump_file_stem`:
    `[0-9A-Za-z_]` only, bounded, so `<class>.py` stays inside output_dir), prefixed with `Model_`
    where the stem starts with a digit, is a keyword, or starts with `__` (Python would mangle the
    name inside the class body). An ordinary class name is unchanged."""
    stem = dump_file_stem(name)
    if stem[0].isdigit() or stem.startswith("__") or keyword.iskeyword(stem):
        return f"Model_{stem}"
    return stem


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
        lines.append(f"        self.module_{i} = py_nndct.nn.{_CLASSES[node.op_type]}({args}) #{node.name}")
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


def load_generated(path: Path, class_name: str) -> type:
    """Import the class `class_name` from the generated file `path` (a fresh module each time)."""
    module_name = f"_nndct_generated_{class_name}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def write_source(output_dir: Path, class_name: str, source: str) -> Path:
    """Write `<output_dir>/<class_name>.py` atomically, creating output_dir if needed; an
    unusable output_dir raises OUTPUT_DIR and leaves nothing behind (`staged_export`)."""
    with staged_export(output_dir) as batch:
        return batch.write_bytes(Path(output_dir) / f"{class_name}.py", source.encode("utf-8"))
