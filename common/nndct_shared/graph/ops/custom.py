"""Custom ops (`register_custom_op` in PyTorch): run in float by their own implementation; the
xmodel keeps them as an op of their own type, ONNX has no form for them."""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import ANY, ExportUnsupported, OpContractError, OpDef, register

#: Node attrs that are the graph's, not the custom op's (not written as XIR attrs).
_ATTRS_SKIPPED = ("op_name", "fix", "input_fix", "shape", "data_type")


@register("custom", attrs=("op_name",), arity=ANY)
class Custom(OpDef):
    """attrs: `op_name` (the registered op type); every other attr is the op's own."""

    def nndct_type(self, node) -> str:
        return str(node.attrs["op_name"])  # the reference names a custom node by its own type

    def check(self, graph, node, in_shape, out_shape) -> None:
        if not isinstance(node.attrs["op_name"], str) or not node.attrs["op_name"]:
            raise OpContractError(f"attr 'op_name' must be a non-empty str, got "
                                  f"{node.attrs['op_name']!r}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        a = node.attrs
        impl = custom.get(a["op_name"])
        if impl is None:
            raise KeyError(f"node {node.name!r}: no implementation given for custom op "
                           f"{a['op_name']!r}; pass custom_ops={{{a['op_name']!r}: fn}}")
        return np.asarray(impl(xs, a), dtype=np.float32)

    def to_xmodel(self, b: Any, node, xs) -> str:
        attrs = {k: v for k, v in node.attrs.items() if k not in _ATTRS_SKIPPED}
        attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in attrs.items()}
        return b.emit(node, str(node.attrs["op_name"]),
                      {"input": [b.torch_in(x) for x in xs]}, attrs, torch_out=True)

    def to_onnx(self, b: Any, node, xs) -> str:
        raise ExportUnsupported(f"custom op {node.attrs['op_name']!r} has no ONNX form; export the "
                                "xmodel (it keeps custom ops) or implement it as standard ops")

    def dpu_refusal(self, node) -> str:
        return f"custom op '{node.attrs.get('op_name', node.name)}' can't be converted to XIR."

    def dpu_rule(self, graph, node, target) -> str:
        return self.dpu_refusal(node)
