"""Evaluate an XIR graph in NumPy, op by op, in XIR's own layout (NHWC / NLC).

Why: this is the proof that an exported xmodel computes what the quantized model computes. It
reads only the XGraph (typically `read_xmodel` of the written file): op types, attrs as XIR
defines them (kernel {w, h}, pad {l, r, t, b}, transposed-conv pad = k - 1 - actual pad, OHWI
weights, depthwise `[m, kh, kw, C]`), const bytes and fix ops (DPU round). Tests compare its
values with `reference.run_reference` exactly. Arithmetic goes through the shared `kernels`,
after this module moves operands into their channels-first layout.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..kernels import fix_neuron
from ..xmodel import XGraph, XOp, read_xmodel
from . import kernels as K
from .layout import to_xir

__all__ = ["evaluate_xgraph", "evaluate_xmodel", "XirCustomImpl"]

#: A custom op: (input arrays, op attrs) -> output array.
XirCustomImpl = Callable[[list[np.ndarray], Mapping[str, Any]], np.ndarray]


def _nc(x: np.ndarray) -> np.ndarray:
    """Channels-last `[N, *S, C]` -> channels-first `[N, C, *S]`."""
    return np.moveaxis(x, -1, 1)


def _nl(x: np.ndarray) -> np.ndarray:
    """Channels-first -> channels-last."""
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def _pairs(pad: list[int]) -> list[tuple[int, int]]:
    """XIR pad {l, r} or {l, r, t, b} -> per spatial dim (before, after) in H, W order."""
    if len(pad) == 2:
        return [(pad[0], pad[1])]
    return [(pad[2], pad[3]), (pad[0], pad[1])]


def _hw(values: list[int]) -> list[int]:
    """XIR {w, h} -> [h, w] (1-D lists are unchanged)."""
    return list(values[::-1])


def _fix(x: np.ndarray, op: XOp) -> np.ndarray:
    a = op.attrs
    if not a["if_signed"]:
        raise NotImplementedError(f"fix op {op.name!r}: unsigned fix is not evaluated")
    # DPU_ROUND, STD_ROUND, PY3_ROUND: names of the one rounding table (case-insensitive)
    return fix_neuron(np.ascontiguousarray(x, np.float32), int(a["bit_width"]),
                      int(a["fix_point"]), str(a["round_mode"]))


def _conv(op: XOp, x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    a = op.attrs
    stride, dilation = _hw(a["stride"]), _hw(a.get("dilation", [1] * len(a["stride"])))
    pads = _pairs(a.get("pad", [0] * (2 * len(a["stride"]))))
    if op.type == "conv1d":
        return _nl(K.conv(_nc(x), w.transpose(0, 2, 1), b, stride, pads, dilation))
    if op.type == "conv2d":
        groups = int(a.get("group", 1))
        return _nl(K.conv(_nc(x), w.transpose(0, 3, 1, 2), b, stride, pads, dilation, groups))
    if op.type == "depthwise-conv2d":
        m, kh, kw, c = w.shape
        torch_w = w.transpose(3, 0, 1, 2).reshape(c * m, 1, kh, kw)
        return _nl(K.conv(_nc(x), torch_w, b, stride, pads, dilation, c))
    # transposed convs: dilate by stride, pad k-1-pad each side, correlate with the stored
    # (already flipped) filter [oc, kh, kw, ic] or [m, kh, kw, c].
    kernel = _hw(a["kernel"])
    if any(d != 1 for d in dilation):
        raise NotImplementedError(f"{op.name!r}: transposed conv with dilation")
    actual = [(kernel[i] - 1 - before, kernel[i] - 1 - after)
              for i, (before, after) in enumerate(pads)]
    xd = K.dilate_input(_nc(x), stride)
    if op.type == "transposed-conv2d":
        return _nl(K.conv(xd, w.transpose(0, 3, 1, 2), b, [1, 1], actual, [1, 1]))
    m, kh, kw, c = w.shape
    torch_w = w.transpose(3, 0, 1, 2).reshape(c * m, 1, kh, kw)
    return _nl(K.conv(xd, torch_w, b, [1, 1], actual, [1, 1], c))


def _pool(op: XOp, x: np.ndarray) -> np.ndarray:
    a = op.attrs
    kernel, stride = _hw(a["kernel"]), _hw(a["stride"])
    pads = _pairs(a.get("pad", [0] * (2 * len(kernel))))
    if any(before != after for before, after in pads):
        raise NotImplementedError(f"{op.name!r}: asymmetric pool padding")
    padding = [before for before, _ in pads]
    mode = str(a["pad_mode"])
    if mode not in ("FLOOR", "CEIL"):
        raise NotImplementedError(f"{op.name!r}: pad_mode {mode}")
    ceil = mode == "CEIL"
    if op.type in ("maxpool2d", "maxpool1d"):
        return _nl(K.max_pool(_nc(x), kernel, stride, padding, ceil))
    if a.get("count_include_invalid", True) and ceil:
        raise NotImplementedError(f"{op.name!r}: count_include_invalid with CEIL")
    return _nl(K.avg_pool(_nc(x), kernel, stride, padding, ceil,
                          bool(a.get("count_include_pad", True))))


def _builtin_custom(op: XOp, xs: list[np.ndarray]) -> np.ndarray | None:
    """The `aten::` pools this project writes as custom ops (channels-last inputs)."""
    a, x = op.attrs, (xs[0] if xs else None)
    if op.type == "aten::avg_pool1d":
        pad = list(a["pad"])
        return _nl(K.avg_pool(_nc(x), list(a["kernel"]), list(a["stride"]), [pad[0]],
                              bool(a["ceil_mode"]), bool(a["count_include_pad"])))
    if op.type in ("aten::adaptive_avg_pool1d", "aten::adaptive_avg_pool2d"):
        return _nl(K.adaptive_avg_pool(_nc(x), list(a["output_size"])))
    return None


def _run(op: XOp, xs: list[np.ndarray], args: dict[str, list[np.ndarray]],
         custom: Mapping[str, XirCustomImpl]) -> np.ndarray:
    t, a = op.type, op.attrs
    x = xs[0] if xs else None
    if t == "const":
        return op.const_array()
    if t == "fix":
        return _fix(x, op)
    if t == "transpose":
        return np.ascontiguousarray(np.transpose(x, list(a["order"])))
    if t == "matmul":
        p, q = (np.asarray(v, np.float64) for v in xs)
        if a["transpose_a"]:
            p = np.swapaxes(p, -1, -2)
        if a["transpose_b"]:
            q = np.swapaxes(q, -1, -2)
        out = p @ q
        if args.get("bias"):
            out = out + np.asarray(args["bias"][0], np.float64)
        return K.f32(out)
    if t in ("conv1d", "conv2d", "depthwise-conv2d", "transposed-conv2d",
             "transposed-depthwise-conv2d"):
        bias = args["bias"][0] if args.get("bias") else None
        return _conv(op, x, args["weights"][0], bias)
    if t in ("maxpool1d", "maxpool2d", "avgpool2d"):
        return _pool(op, x)
    if t in ("add", "sub", "mul"):
        fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[t]
        out = np.asarray(xs[0], np.float64)
        for other in xs[1:]:
            out = fn(out, np.asarray(other, np.float64))
        return K.f32(out)
    if t == "relu":
        return np.maximum(x, np.float32(0))
    if t == "relu6":
        return np.clip(x, np.float32(0), np.float32(6))
    if t == "leaky-relu":
        return K.leaky_relu(x, a["alpha"])
    if t == "sigmoid":
        return K.sigmoid(x)
    if t == "tanh":
        return K.f32(np.tanh(np.asarray(x, np.float64)))
    if t == "hard-swish":
        return K.hardswish(x)
    if t == "scale":
        axis = int(a.get("axis", -1)) % x.ndim
        shape = [1] * x.ndim
        shape[axis] = -1
        out = np.asarray(x, np.float64) * np.asarray(args["scale"][0], np.float64).reshape(shape)
        if args.get("bias"):
            out = out + np.asarray(args["bias"][0], np.float64).reshape(shape)
        return K.f32(out)
    if t == "concat":
        return np.concatenate(xs, axis=int(a["axis"]))
    if t == "stack":
        return np.stack(xs, axis=int(a["axis"]))
    if t == "flatten":
        start, end = int(a["start_axis"]) % x.ndim, int(a["end_axis"]) % x.ndim
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])
    if t == "reshape":
        if args.get("shape"):
            target = [int(v) for v in np.asarray(args["shape"][0]).reshape(-1)]
        else:
            target = [int(v) for v in a["shape"]]
        return x.reshape(target)
    if t == "reduction_mean":
        return K.mean(x, [int(d) % x.ndim for d in a["axis"]], bool(a["keep_dims"]))
    if t == "softmax":
        return K.softmax(x, int(a["axis"]))
    out = _builtin_custom(op, xs)
    if out is not None:
        return out
    if t in custom:
        return np.asarray(custom[t](xs, dict(a)), dtype=np.float32)
    raise NotImplementedError(f"op {op.name!r}: XIR op type {t!r} is not evaluated")


def evaluate_xgraph(
    xgraph: XGraph,
    inputs: Mapping[str, np.ndarray],
    custom_ops: Mapping[str, XirCustomImpl] | None = None,
    *,
    torch_layout_inputs: bool = True,
) -> dict[str, np.ndarray]:
    """Run every op of `xgraph`; returns {op name: value in XIR layout}.

    `inputs` are keyed by `data` op name; with `torch_layout_inputs` they are given in torch
    layout (NCHW / NCL) and moved to XIR layout here."""
    values: dict[str, np.ndarray] = {}
    custom = dict(custom_ops or {})
    for op in xgraph.topological_order():
        if op.type == "data":
            if op.name not in inputs:
                raise KeyError(f"no value given for data op {op.name!r}")
            x = np.asarray(inputs[op.name], dtype=np.float32)
            x = to_xir(x) if torch_layout_inputs else x
            if list(x.shape) != list(op.shape):
                raise ValueError(f"data op {op.name!r} expects shape {op.shape}, got "
                                 f"{list(x.shape)}")
            values[op.name] = x
            continue
        args = {arg: [values[p] for p in producers] for arg, producers in op.inputs.items()}
        out = _run(op, args.get("input", []), args, custom)
        values[op.name] = np.asarray(out, dtype=np.float32)
        if list(values[op.name].shape) != list(op.shape):
            raise ValueError(f"op {op.name!r} ({op.type}) computed shape "
                             f"{list(values[op.name].shape)}, the xmodel says {op.shape}")
    return values


def evaluate_xmodel(
    path: str | os.PathLike[str],
    inputs: Mapping[str, np.ndarray],
    custom_ops: Mapping[str, XirCustomImpl] | None = None,
) -> dict[str, np.ndarray]:
    """`evaluate_xgraph` of the file at `path` (read back with `read_xmodel`)."""
    return evaluate_xgraph(read_xmodel(Path(path)), inputs, custom_ops)
