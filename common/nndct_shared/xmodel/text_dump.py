"""Human-readable listing of an XGraph: one line per op, then the graph attrs."""
from __future__ import annotations

from .attr_value import format_value
from .xgraph import FIX_ATTR_NAMES, XGraph, XOp


def format_op(op: XOp, all_attrs: bool = False) -> str:
    """`name  type  inputs={arg: [ops]}  shape=[...]  fix=(...)` (empty args left out)."""
    inputs = ", ".join(f"{arg}: [{', '.join(ops)}]" for arg, ops in op.inputs.items() if ops)
    parts = [op.name, op.type, f"inputs={{{inputs}}}", f"shape={op.shape}"]
    fix_attrs = [name for name in FIX_ATTR_NAMES if name in op.attrs]
    if op.type == "fix" or len(fix_attrs) == len(FIX_ATTR_NAMES):
        parts.append(
            "fix=(" + ", ".join(f"{n}={format_value(op.attrs[n])}" for n in
                                ("bit_width", "fix_point", "round_mode", "if_signed")
                                if n in op.attrs) + ")"
        )
    if all_attrs:
        others = [n for n in op.attrs if n not in fix_attrs]
        if others:
            parts.append("attrs={" + ", ".join(f"{n}: {format_value(op.attrs[n])}"
                                                for n in others) + "}")
    return "  ".join(parts)


def format_xgraph(xgraph: XGraph, all_attrs: bool = False) -> str:
    """The whole listing: header, ops in topological order, graph attrs."""
    counts = ", ".join(f"{t} {n}" for t, n in xgraph.op_type_counts().items())
    lines = [f"graph {xgraph.name}: {len(xgraph)} ops ({counts})"]
    lines.extend(format_op(op, all_attrs) for op in xgraph.topological_order())
    lines.append("graph attrs:")
    for name, kind, value in xgraph.attrs.typed_items():
        lines.append(f"  {name} ({kind}) = {format_value(value, limit=64)}")
    return "\n".join(lines) + "\n"
