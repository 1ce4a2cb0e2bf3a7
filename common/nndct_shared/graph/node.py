"""A node of the neutral graph IR: one operation with named inputs, outputs and params."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .tensor import Tensor


@dataclass(eq=False)
class Node:
    """`inputs` and `outputs` are tensor names (an output defaults to the node's own name);
    `params` maps a role (`weight`, `bias`, ...) to a parameter Tensor that carries data.
    `attrs` holds the op's settings and quantization facts, e.g. `fix = (bit_width,
    fix_point)` of the node's output."""

    name: str
    op_type: str
    attrs: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] | None = None
    params: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"node name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.op_type, str) or not self.op_type:
            raise ValueError(f"node {self.name!r}: op_type must be a non-empty str")
        if isinstance(self.inputs, str):
            raise ValueError(f"node {self.name!r}: inputs must be a list of tensor names, "
                             f"got the str {self.inputs!r}")
        self.inputs = [self._tensor_name(t, "input") for t in self.inputs]
        if self.outputs is None:
            self.outputs = [self.name]
        elif isinstance(self.outputs, str):
            raise ValueError(f"node {self.name!r}: outputs must be a list of tensor names")
        self.outputs = [self._tensor_name(t, "output") for t in self.outputs]
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"node {self.name!r} lists an output tensor twice: {self.outputs}")
        self.attrs = dict(self.attrs)
        self.params = dict(self.params)
        for role, tensor in self.params.items():
            if not isinstance(tensor, Tensor):
                raise ValueError(f"node {self.name!r}: param {role!r} must be a Tensor, "
                                 f"got {type(tensor).__name__}")

    def _tensor_name(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise ValueError(f"node {self.name!r}: {what} tensor names must be non-empty str, "
                             f"got {value!r}")
        return value

    def __repr__(self) -> str:
        params = {role: t.name for role, t in self.params.items()}
        return (f"Node({self.name!r}, {self.op_type!r}, inputs={self.inputs}, "
                f"outputs={self.outputs}, params={params})")
