"""Data movement and resampling: permute / transpose, unsqueeze, chunk / split (one node per
piece), pad and resize (nearest / bilinear upsampling).

Permute, transpose, unsqueeze, chunk and split only move elements, so they are shape-only (no
fix of their own: the output is already on the input's grid). Pad and resize compute their
output (a fill value, interpolated values) and carry their own fix.

Resize follows PyTorch's `F.interpolate`, including how the source index is computed in
float32 (`scale` is the `scale_factor` torch used for the index when it was given, else the
ratio input / output size): nearest is exact for any size. Bilinear uses torch's float32
weights; the weighted sum is taken in float64 and rounded once, which equals torch exactly
where its float32 sums are exact (factors 2 and 4 without align_corners on fixed-point data,
as in U-Nets) and is within float32 rounding of it otherwise (torch sums in its own order).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...cnn_export import kernels as K
from ...cnn_export import layout as L
from ...inspector import rules as R
from ..naming import to_op_name
from .base import ExportUnsupported, OpContractError, OpDef, axis_of, is_int, register
from .shape import _ShapeOnly

# --- permute / transpose ------------------------------------------------------------------------


def _permutation(node, rank: int) -> tuple[int, ...]:
    dims = node.attrs["dims"]
    if (not isinstance(dims, (tuple, list)) or not all(is_int(d) for d in dims)
            or sorted(int(d) for d in dims) != list(range(rank))):
        raise OpContractError(f"attr 'dims' must be a permutation of the {rank} axes (non-negative), "
                              f"got {dims!r}")
    return tuple(int(d) for d in dims)


def xir_order(dims: tuple[int, ...]) -> list[int]:
    """The XIR `transpose` order of a torch permute `dims` between XIR layouts: XIR output dim k
    holds torch output dim P[k] = torch input dim dims[P[k]], found at XIR input dim
    P^-1[dims[P[k]]] (P = `layout.xir_perm` of the rank)."""
    perm = L.xir_perm(len(dims))
    inverse = L.inverse_perm(perm)
    return [int(inverse[dims[perm[k]]]) for k in range(len(dims))]


@register("permute", attrs=("dims",))
class Permute(_ShapeOnly):
    """attrs: `dims`, the full permutation (torch order). XIR: one `transpose` (the xmodel's
    own plumbing op, evaluated by the evaluator itself) between XIR layouts."""

    nndct_op = "nndct_permute"

    def check(self, graph, node, in_shape, out_shape) -> None:
        _permutation(node, len(in_shape))

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(xs[0], _permutation(node, xs[0].ndim)))

    def to_xmodel(self, b, node, xs) -> str:
        dims = _permutation(node, len(b.shape(node.inputs[0])))
        return b.emit(node, "transpose", {"input": xs}, {"order": xir_order(dims)})

    def to_onnx(self, b, node, xs) -> str:
        return b.add("Transpose", [xs[0]], node.name, perm=[int(d) for d in node.attrs["dims"]])

    def dpu_rule(self, graph, node, t) -> str:
        dims = tuple(node.attrs.get("dims", ()))
        if dims and int(dims[0]) != 0:
            return f"DPU only supports {node.op_type} that keeps the batch dimension first."
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Data movement only: the DPU compiler folds the transpose into its neighbours' memory layout."


@register("transpose", attrs=("dims",))
class Transpose(Permute):
    """`torch.transpose(x, a, b)` / `x.T`: a permute swapping two axes (attrs `dims`, the full
    permutation), kept apart for the reference's op name."""

    nndct_op = "nndct_transpose"


# --- unsqueeze ------------------------------------------------------------------------------------


@register("unsqueeze", attrs=("dim",))
class Unsqueeze(_ShapeOnly):
    """attrs: `dim`, the new size-1 axis of the output (non-negative). XIR: a `reshape` with
    attr `shape` (the output shape)."""

    nndct_op = "nndct_unsqueeze"

    def check(self, graph, node, in_shape, out_shape) -> None:
        axis_of(node, "dim", node.attrs["dim"], len(in_shape) + 1)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return np.expand_dims(xs[0], int(node.attrs["dim"]))

    def to_xmodel(self, b, node, xs) -> str:
        out = [int(d) for d in b.shape(node.outputs[0])]
        if len(b.shape(node.inputs[0])) <= 2 and len(out) <= 2:
            return b.emit(node, "reshape", {"input": xs}, {"shape": out})
        return b.emit(node, "reshape", {"input": [b.torch_in(xs[0])]}, {"shape": out}, torch_out=True)


# --- chunk / split --------------------------------------------------------------------------------


def _slice_bounds(node, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    dim = axis_of(node, "dim", node.attrs["dim"], len(in_shape))
    start, end = node.attrs["start"], node.attrs["end"]
    if not (is_int(start) and is_int(end) and 0 <= start < end <= in_shape[dim]):
        raise OpContractError(f"attrs start={start!r}, end={end!r} are not a non-empty range of axis "
                              f"{dim} (size {in_shape[dim]})")
    return dim, int(start), int(end)


def _strided_slice(x: np.ndarray, begin, end, strides) -> np.ndarray:
    index = tuple(slice(int(b), int(e), int(s)) for b, e, s in zip(begin, end, strides))
    return np.ascontiguousarray(x[index])


class _Piece(_ShapeOnly):
    """One piece of a chunk / split: attrs `dim`, `start`, `end` (the elements start..end-1 of
    axis `dim`). XIR: `strided_slice` in XIR layout."""

    attrs = ("dim", "start", "end")

    def check(self, graph, node, in_shape, out_shape) -> None:
        _slice_bounds(node, in_shape)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        dim, start, end = _slice_bounds(node, xs[0].shape)
        index = [slice(None)] * xs[0].ndim
        index[dim] = slice(start, end)
        return np.ascontiguousarray(xs[0][tuple(index)])

    def to_xmodel(self, b, node, xs) -> str:
        in_shape = tuple(b.shape(node.inputs[0]))
        dim, start, end = _slice_bounds(node, in_shape)
        xir_in = L.xir_shape(in_shape)
        k = L.xir_perm(len(in_shape)).index(dim)
        begin, stop = [0] * len(xir_in), list(xir_in)
        begin[k], stop[k] = start, end
        return b.emit(node, "strided_slice", {"input": xs},
                      {"begin": begin, "end": stop, "strides": [1] * len(xir_in)})

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        a = op.attrs
        return _strided_slice(xs[0], a["begin"], a["end"], a["strides"])

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        starts = b.init(f"{n}_starts", np.array([int(node.attrs["start"])], np.int64))
        ends = b.init(f"{n}_ends", np.array([int(node.attrs["end"])], np.int64))
        axes = b.init(f"{n}_axes", np.array([int(node.attrs["dim"])], np.int64))
        return b.add("Slice", [xs[0], starts, ends, axes], n)

    def dpu_rule(self, graph, node, t) -> str:
        if int(node.attrs.get("dim", 1)) == 0:
            return f"DPU does not support {node.op_type} along the batch dimension."
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Data movement only: the DPU compiler reads the piece as a view of its input."


@register("chunk", xir_types=("strided_slice",))
class Chunk(_Piece):
    nndct_op = "nndct_chunk"


@register("split")
class Split(_Piece):
    nndct_op = "nndct_split"


# --- pad --------------------------------------------------------------------------------------------

_PAD_MODES = {"constant": "CONSTANT", "reflect": "REFLECT", "replicate": None}


def _pad_pairs(node, rank: int) -> list[tuple[int, int]]:
    pads = node.attrs["pads"]
    if (not isinstance(pads, (tuple, list)) or len(pads) != rank
            or not all(isinstance(p, (tuple, list)) and len(p) == 2
                       and all(is_int(v) and v >= 0 for v in p) for p in pads)):
        raise OpContractError(f"attr 'pads' must give (before, after) >= 0 for each of the {rank} "
                              f"axes (torch order), got {pads!r}")
    return [(int(p[0]), int(p[1])) for p in pads]


def pad_array(x: np.ndarray, pairs: list[tuple[int, int]], mode: str, value: float) -> np.ndarray:
    """torch F.pad on `x` (float32 out): constant `value` (as float32), reflect or replicate."""
    if mode == "constant":
        return np.pad(np.asarray(x, np.float32), pairs, constant_values=np.float32(value))
    return np.pad(np.asarray(x, np.float32), pairs, mode="reflect" if mode == "reflect" else "edge")


@register("pad", attrs=("pads", "mode", "value"), xir_types=("pad",))
class Pad(OpDef):
    """attrs: `pads` ((before, after) per axis, torch order), `mode` ("constant", "reflect",
    "replicate"), `value` (the constant fill). Its output carries its own fix."""

    nndct_op = "nndct_pad"

    def check(self, graph, node, in_shape, out_shape) -> None:
        pairs = _pad_pairs(node, len(in_shape))
        mode = node.attrs["mode"]
        if mode not in _PAD_MODES:
            raise OpContractError(f"attr 'mode' must be one of {sorted(_PAD_MODES)}, got {mode!r}")
        if not isinstance(node.attrs["value"], (int, float, np.floating)) or not np.isfinite(node.attrs["value"]):
            raise OpContractError(f"attr 'value' must be a finite number, got {node.attrs['value']!r}")
        if mode == "reflect" and any(max(p) >= s for p, s in zip(pairs, in_shape)):
            raise OpContractError(f"reflect padding {pairs} must be smaller than the input {list(in_shape)}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        a = node.attrs
        return pad_array(xs[0], _pad_pairs(node, xs[0].ndim), a["mode"], float(a["value"]))

    def to_xmodel(self, b, node, xs) -> str:
        rank = len(b.shape(node.inputs[0]))
        pairs = _pad_pairs(node, rank)
        mode = _PAD_MODES[node.attrs["mode"]]
        if mode is None:
            raise ExportUnsupported("XIR pad has no replicate (edge) mode")
        paddings = [v for i in L.xir_perm(rank) for v in pairs[i]]
        return b.emit(node, "pad", {"input": xs}, {"paddings": paddings, "mode": mode,
                                                   "constant_values": [float(node.attrs["value"])]})

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        flat = [int(v) for v in op.attrs["paddings"]]
        pairs = list(zip(flat[0::2], flat[1::2]))
        values = list(op.attrs.get("constant_values", []) or [0.0])
        mode = {"CONSTANT": "constant", "REFLECT": "reflect"}.get(str(op.attrs["mode"]))
        if mode is None:
            raise NotImplementedError(f"{op.name!r}: pad mode {op.attrs['mode']}")
        return pad_array(xs[0], pairs, mode, float(values[0]))

    def to_onnx(self, b, node, xs) -> str:
        n, a = node.name, node.attrs
        pairs = _pad_pairs(node, len(b.shape(node.inputs[0])))
        pads = b.init(f"{n}_pads", np.array([p[0] for p in pairs] + [p[1] for p in pairs], np.int64))
        mode = {"replicate": "edge"}.get(a["mode"], a["mode"])
        inputs = [xs[0], pads]
        if mode == "constant":
            inputs.append(b.init(f"{n}_value", np.array(a["value"], np.float32)))
        return b.add("Pad", inputs, n, mode=mode)

    def dpu_rule(self, graph, node, t) -> str:
        pairs = [tuple(p) for p in node.attrs.get("pads", ())]
        if len(pairs) != 4 or any(p != (0, 0) for p in pairs[:2]):
            return "DPU only supports padding the height and width of 4-D feature maps."
        if node.attrs.get("mode") != "constant" or float(node.attrs.get("value", 0.0)) != 0.0:
            return (f"DPU only supports zero (constant 0) padding, got mode "
                    f"'{node.attrs.get('mode')}' with value {node.attrs.get('value')}.")
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Zero padding of the height and width, written by the DPU's load engine."


# --- resize -----------------------------------------------------------------------------------------

_RESIZE_MODES = {"nearest": "NEAREST", "bilinear": "BILINEAR"}


def _index_scale(in_size: int, out_size: int, align_corners: bool, scale: float | None) -> np.float32:
    """torch's float32 source-index step (`area_pixel_compute_scale`)."""
    if align_corners:
        return np.float32(np.float32(in_size - 1) / np.float32(out_size - 1)) if out_size > 1 \
            else np.float32(0)
    if scale is not None and scale > 0:
        return np.float32(1.0 / float(scale))
    return np.float32(np.float32(in_size) / np.float32(out_size))


def _nearest_index(in_size: int, out_size: int, scale: float | None) -> np.ndarray:
    if out_size == in_size:
        return np.arange(out_size)
    if out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    step = _index_scale(in_size, out_size, False, scale)
    src = np.floor(np.arange(out_size, dtype=np.float32) * step).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _linear_weights(in_size: int, out_size: int, align_corners: bool, scale: float | None):
    """(i0, i1, w0, w1) of torch's linear interpolation along one axis (float32 weights)."""
    step = _index_scale(in_size, out_size, align_corners, scale)
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        src = step * dst
    else:
        src = np.maximum(step * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = i0 + (i0 < in_size - 1)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1))
    w0 = np.float32(1) - w1
    return i0, i1, w0.astype(np.float64), w1.astype(np.float64)


def resize(x: np.ndarray, out_hw: tuple[int, int], mode: str, align_corners: bool,
           scale: tuple[float, float] | None) -> np.ndarray:
    """torch `F.interpolate` of an NCHW array to `out_hw` (mode nearest or bilinear)."""
    x = np.asarray(x, np.float32)
    (h, w), (oh, ow) = x.shape[2:], out_hw
    sh, sw = (None, None) if scale is None else scale
    if mode == "nearest":
        return np.ascontiguousarray(x[:, :, _nearest_index(h, oh, sh)][:, :, :, _nearest_index(w, ow, sw)])
    y0, y1, hy0, hy1 = _linear_weights(h, oh, align_corners, sh)
    x0, x1, wx0, wx1 = _linear_weights(w, ow, align_corners, sw)
    xd = x.astype(np.float64)
    top = xd[:, :, y0][:, :, :, x0] * wx0 + xd[:, :, y0][:, :, :, x1] * wx1
    bottom = xd[:, :, y1][:, :, :, x0] * wx0 + xd[:, :, y1][:, :, :, x1] * wx1
    return K.f32(top * hy0[:, None] + bottom * hy1[:, None])


def _resize_attrs(node) -> tuple[str, bool, tuple[float, float] | None]:
    a = node.attrs
    scale = a.get("scale")
    return a["mode"], bool(a["align_corners"]), None if scale is None else (float(scale[0]), float(scale[1]))


@register("resize", attrs=("mode", "align_corners"), optional_attrs=("scale",), xir_types=("resize",))
class Resize(OpDef):
    """F.interpolate / nn.Upsample of a 4-D tensor. attrs: `mode` ("nearest", "bilinear"),
    `align_corners` (bool, bilinear only), optional `scale` ((sh, sw), the scale_factor torch
    computed the source index with); the output size is the output tensor's. XIR: `resize`
    with attr `scale` {w, h} when `scale` is set, else input `size` (a stack of consts
    [out_h, out_w]), as the reference writes it."""

    nndct_op = "nndct_resize"

    def check(self, graph, node, in_shape, out_shape) -> None:
        a = node.attrs
        if len(in_shape) != 4:
            raise OpContractError(f"resize needs a rank-4 input [N, C, H, W], got shape {list(in_shape)}")
        if a["mode"] not in _RESIZE_MODES:
            raise OpContractError(f"attr 'mode' must be one of {sorted(_RESIZE_MODES)}, got {a['mode']!r}")
        if not isinstance(a["align_corners"], (bool, np.bool_)):
            raise OpContractError(f"attr 'align_corners' must be a bool, got {a['align_corners']!r}")
        scale = a.get("scale")
        if scale is not None and (not isinstance(scale, (tuple, list)) or len(scale) != 2
                                  or not all(isinstance(s, (int, float)) and s > 0 for s in scale)):
            raise OpContractError(f"attr 'scale' must be (sh, sw) > 0, got {scale!r}")
        if tuple(out_shape[:2]) != tuple(in_shape[:2]):
            raise OpContractError(f"resize keeps batch and channels: {list(in_shape)} -> {list(out_shape)}")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        mode, align, scale = _resize_attrs(node)
        if out_shape is None:           # no recorded shape yet: torch's size from the scale
            if scale is None:
                raise ValueError(f"node {node.name!r}: a resize without 'scale' needs its output shape")
            out_shape = xs[0].shape[:2] + tuple(int(math.floor(s * f)) for s, f in zip(xs[0].shape[2:], scale))
        return resize(xs[0], tuple(out_shape[2:]), mode, align, scale)

    def to_xmodel(self, b, node, xs) -> str:
        mode, align, scale = _resize_attrs(node)
        attrs: dict[str, Any] = {"mode": _RESIZE_MODES[mode], "align_corners": align,
                                 "half_pixel_centers": mode == "bilinear" and not align}
        args: dict[str, list[str]] = {"input": xs}
        if scale is not None:
            attrs["scale"] = [scale[1], scale[0]]
        else:
            name = to_op_name(node.name)
            out_h, out_w = b.shape(node.outputs[0])[2:]
            consts = []
            for i, d in enumerate((out_h, out_w)):
                const = f"{name}_size_attr_{i}_"
                b.x.add_const(const, np.array([d], dtype=np.float32))
                consts.append(const)
            stack = f"{name}_size_i0"
            b.x.add_op(stack, "stack", inputs={"input": consts}, attrs={"axis": 0}, shape=[2, 1],
                       tensor_attrs={"shape_info": [int(out_h), int(out_w)]})
            args["size"] = [stack]
        return b.emit(node, "resize", args, attrs)

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        a = op.attrs
        mode = {v: k for k, v in _RESIZE_MODES.items()}[str(a["mode"])]
        align = bool(a.get("align_corners", False))
        if mode == "bilinear" and bool(a.get("half_pixel_centers", False)) == align:
            raise NotImplementedError(f"{op.name!r}: bilinear resize needs exactly one of "
                                      "align_corners and half_pixel_centers")
        scale = None if args.get("size") else tuple(float(s) for s in a["scale"][::-1])
        out_hw = tuple(int(d) for d in op.shape[1:3])
        return L.channels_last(resize(L.channels_first(xs[0]), out_hw, mode, align, scale))

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        mode, align, scale = _resize_attrs(node)
        if mode == "nearest":
            attrs = dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        else:
            attrs = dict(mode="linear", coordinate_transformation_mode="align_corners" if align
                         else "pytorch_half_pixel")
        if scale is not None:
            scales = b.init(f"{n}_scales", np.array([1.0, 1.0, scale[0], scale[1]], np.float32))
            return b.add("Resize", [xs[0], "", scales], n, **attrs)
        sizes = b.init(f"{n}_sizes", np.array(b.shape(node.outputs[0])[2:], np.int64))
        return b.add("Resize", [xs[0], "", "", sizes], n, axes=[2, 3], **attrs)

    def dpu_rule(self, graph, node, t) -> str:
        in_shape, out_shape = R.input_shape(graph, node), R.output_shape(graph, node)
        if node.attrs.get("mode") == "bilinear" and node.attrs.get("align_corners"):
            return "DPU only supports bilinear resize with align_corners=False."
        if in_shape is not None and out_shape is not None and any(
                o % i for i, o in zip(in_shape[2:], out_shape[2:])):
            return (f"DPU only supports resize by integer factors, got {R.dims(in_shape[2:])} -> "
                    f"{R.dims(out_shape[2:])}.")
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        in_shape, out_shape = R.input_shape(graph, node), R.output_shape(graph, node)
        factor = "" if in_shape is None or out_shape is None else \
            " by " + R.dims([o // i for i, o in zip(in_shape[2:], out_shape[2:])])
        return f"{node.attrs.get('mode', 'nearest').capitalize()} upsampling{factor} on the DPU."

