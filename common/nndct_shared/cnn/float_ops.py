"""Ops that run in float inside a quantized model: those whose registry entry has no quantized
form (`OpDef.quantizable` False: GELU, ELU, SiLU, LayerNorm, GroupNorm, InstanceNorm, sum,
max).

Why here, before the fix plan: every front end captures these ops like any other, and the
session decides once, as the reference does, that they are not quantized: their nodes leave
the quantized part with the FLOAT_OP warning naming them, their params stay float, and where a
quantized node (or a shape-only op feeding one) reads a float op's output, that output is
quantized as an input of the quantized part (the reference's `input` entries of
quant_info.json), exactly as a QuantStub would quantize it.
"""
from __future__ import annotations

from nndct_shared.graph.ops import get_op
from nndct_shared.messages import warn

from .capture import CapturedModel

__all__ = ["keep_float_ops"]


def keep_float_ops(captured: CapturedModel) -> list[str]:
    """Move the quantized nodes of non-quantizable ops out of `captured.quantized` (and into
    `captured.quant_inputs` where a quantized node reads them); warn FLOAT_OP naming them.
    Returns their names in topological order."""
    graph = captured.graph
    floats = [n for n in graph.topological_order()
              if n.name in captured.quantized and not get_op(n.op_type).quantizable]
    captured.quantized.difference_update(n.name for n in floats)
    for node in floats:
        if any(reader.name in captured.quantized for reader in graph.successors(node.name)):
            captured.quant_inputs.add(node.name)
    if floats:
        warn("FLOAT_OP", ops=", ".join(f"{n.name} ({n.op_type})" for n in floats))
    return [n.name for n in floats]
