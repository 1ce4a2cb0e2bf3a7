"""Pooling: max / average pools (1-D, 2-D), adaptive pools, and `mean` over axes.

Average pools and `mean` may carry `dpu_scale`, the factor the quantized model multiplies the
pooled value by (the reference's DPU approximation of the division); the reference executor and
ONNX multiply by it, the xmodel writes it as the `<op>_i1` const of a `mul`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...cnn_export import kernels as K
from ...cnn_export import layout as L
from ...inspector import rules as R
from .base import ExportUnsupported, OpContractError, OpDef, axis_of, int_tuple, register

_POOL_ATTRS = ("kernel", "stride", "padding", "ceil_mode")
_ONE_D = "DPU does not support {} (only 2-D convolution and pooling)."


# --- shared ------------------------------------------------------------------------------------


def check_dims(node, rank: int) -> None:
    """attr `dims` of a reduction: a non-empty tuple of axes of a rank-`rank` input."""
    dims = node.attrs["dims"]
    if not isinstance(dims, (tuple, list)) or not dims:
        raise OpContractError(f"attr 'dims' must be a non-empty tuple of axes, got {dims!r}")
    for d in dims:
        axis_of(node, "dims", d, rank)


def _check_dpu_scale(node) -> None:
    scale = node.attrs.get("dpu_scale")
    if scale is not None and (not isinstance(scale, (float, int, np.floating))
                              or not np.isfinite(scale) or scale <= 0):
        raise OpContractError(f"attr 'dpu_scale' must be a positive number, got {scale!r}")


def _avg_scale(node, out: np.ndarray) -> np.ndarray:
    scale = node.attrs.get("dpu_scale")
    return out if scale is None else K.scale_mul(out, scale)


def _window_attrs(node) -> dict[str, Any]:
    """XIR attrs of a pool's window (kernel/stride {w, h}, pad {l, r, t, b})."""
    a = node.attrs
    kernel, stride, padding = list(a["kernel"]), list(a["stride"]), list(a["padding"])
    pad_mode = "CEIL" if a["ceil_mode"] else "FLOOR"
    if len(kernel) == 1:
        return {"kernel": kernel, "stride": stride, "pad_mode": pad_mode,
                "pad": [padding[0], padding[0]]}
    return {"kernel": kernel[::-1], "stride": stride[::-1], "pad_mode": pad_mode,
            "pad": [padding[1], padding[1], padding[0], padding[0]], "global": False}


def _eval_pool(op: Any, x: np.ndarray) -> np.ndarray:
    """maxpool1d / maxpool2d / avgpool2d of a written xmodel."""
    a = op.attrs
    nc, nl = L.channels_first, L.channels_last
    kernel, stride = L.xir_hw(a["kernel"]), L.xir_hw(a["stride"])
    pads = L.xir_pad_pairs(a.get("pad", [0] * (2 * len(kernel))))
    if any(before != after for before, after in pads):
        raise NotImplementedError(f"{op.name!r}: asymmetric pool padding")
    padding = [before for before, _ in pads]
    mode = str(a["pad_mode"])
    if mode not in ("FLOOR", "CEIL"):
        raise NotImplementedError(f"{op.name!r}: pad_mode {mode}")
    ceil = mode == "CEIL"
    if op.type in ("maxpool2d", "maxpool1d"):
        return nl(K.max_pool(nc(x), kernel, stride, padding, ceil))
    if a.get("count_include_invalid", True) and ceil:
        raise NotImplementedError(f"{op.name!r}: count_include_invalid with CEIL")
    return nl(K.avg_pool(nc(x), kernel, stride, padding, ceil,
                         bool(a.get("count_include_pad", True))))


def _pool_engine(node, t) -> str:
    kind = "max" if node.op_type.startswith(("max", "adaptive_max")) else "avg"
    what = "Global average pooling" if node.op_type == "mean" else "Pooling"
    return f"{what} within the kernel and stride limits of the {R.engine_of_kind(t, kind)}."


def _pool_rule(graph, node, t) -> str:
    kind = "max" if node.op_type.startswith(("max", "adaptive_max")) else "avg"
    in_shape, out_shape = R.input_shape(graph, node), R.output_shape(graph, node)
    if node.op_type in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        if in_shape is None or out_shape is None or len(in_shape) != 4:
            return ""          # shapes unknown: kernel/stride cannot be derived, not enforced
        if any(i % o for i, o in zip(in_shape[2:], out_shape[2:])):
            return (f"DPU only supports {node.op_type} whose input size {list(in_shape[2:])} "
                    f"is a multiple of its output size {list(out_shape[2:])}.")
        stride = tuple(i // o for i, o in zip(in_shape[2:], out_shape[2:]))
        kernel, padding = stride, (0, 0)
    else:
        kernel = R.pair(node.attrs.get("kernel"), 1)
        stride = R.pair(node.attrs.get("stride"), kernel[0])
        padding = R.pair(node.attrs.get("padding"), 0)
    if t.alu is not None and f"{kind}_pool" in t.alu.types:
        kernel_limit, stride_limit, pad_limit = t.alu.kernel, t.alu.stride, t.alu.pad
    elif t.pool is not None and kind in t.pool.types:
        if kind == "avg" and t.pool.avg_square and kernel[0] != kernel[1]:
            return (f"DPU only supports avgpool with square kernel, but this op has kernel "
                    f"{R.dims(kernel)}.")
        kernel_limit = t.pool.avg_kernel if kind == "avg" else t.pool.max_kernel
        stride_limit = t.pool.avg_stride if kind == "avg" else t.pool.max_stride
        pad_limit = None
    else:
        return f"{t.name} does not support {node.op_type}."
    msg = R.kernel_stride_problem(graph, node, kernel, stride, kernel_limit, stride_limit)
    if msg:
        return msg
    return R.check_pad(padding, kernel, (1, 1), pad_limit)


def _adaptive_max_window(b: Any, node) -> tuple[list[int], list[int]]:
    """(input size, kernel) of an adaptive max pool with uniform windows, torch order."""
    size = [int(s) for s in b.shape(node.inputs[0])[2:]]
    out = [int(o) for o in node.attrs["output_size"]]
    if any(s % o for s, o in zip(size, out)):
        raise ExportUnsupported(f"adaptive max pool from {size} to {out} has windows of different "
                                "sizes (no maxpool form)")
    return size, [s // o for s, o in zip(size, out)]


class _Pool(OpDef):
    """Max / average pools with a window: kernel, stride, padding (symmetric), ceil_mode."""

    attrs = _POOL_ATTRS
    cle = "transparent"

    def check(self, graph, node, in_shape, out_shape) -> None:
        nsp = self.spatial
        kernel = int_tuple(node, "kernel", nsp, 1)
        int_tuple(node, "stride", nsp, 1)
        padding = int_tuple(node, "padding", nsp, 0)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise OpContractError(f"padding {list(padding)} exceeds half the kernel {list(kernel)}")

    def to_onnx(self, b, node, xs) -> str:
        a, n = node.attrs, node.name
        attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                     pads=[int(p) for p in a["padding"]] * 2, ceil_mode=int(a["ceil_mode"]))
        if node.op_type.startswith("max"):
            return b.add("MaxPool", [xs[0]], n, **attrs)
        y = b.add("AveragePool", [xs[0]], n, count_include_pad=int(a["count_include_pad"]), **attrs)
        return b.avg_scaled(node, y)

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return _eval_pool(op, xs[0])


class _MaxPool(_Pool):
    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        a = node.attrs
        return K.max_pool(xs[0], a["kernel"], a["stride"], a["padding"], bool(a["ceil_mode"]))


class _AvgPool(_Pool):
    attrs = _POOL_ATTRS + ("count_include_pad",)
    optional_attrs = ("dpu_scale",)

    def check(self, graph, node, in_shape, out_shape) -> None:
        super().check(graph, node, in_shape, out_shape)
        _check_dpu_scale(node)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        a = node.attrs
        return _avg_scale(node, K.avg_pool(xs[0], a["kernel"], a["stride"], a["padding"],
                                           bool(a["ceil_mode"]), bool(a["count_include_pad"])))


class _Adaptive(OpDef):
    """Adaptive pools: attrs `output_size`; window j of an axis of length L spans
    [floor(j*L/out), ceil((j+1)*L/out))."""

    attrs = ("output_size",)
    cle = "transparent"

    def check(self, graph, node, in_shape, out_shape) -> None:
        int_tuple(node, "output_size", self.spatial, 1)

    def to_onnx(self, b, node, xs) -> str:
        # Uniform windows only: then the adaptive pool is a pool with kernel = stride.
        a, n = node.attrs, node.name
        kind, onnx_op = ("average", "AveragePool") if "avg" in node.op_type else ("max", "MaxPool")
        size = b.shape(node.inputs[0])[2:]
        out = [int(v) for v in a["output_size"]]
        if any(s % o for s, o in zip(size, out)):
            raise ExportUnsupported(f"adaptive {kind} pool from {list(size)} to {out} has "
                                    f"windows of different sizes (no {onnx_op} form)")
        if all(o == 1 for o in out):
            y = b.add(f"Global{onnx_op}", [xs[0]], n)
        else:
            kernel = [s // o for s, o in zip(size, out)]
            y = b.add(onnx_op, [xs[0]], n, kernel_shape=kernel, strides=kernel)
        return b.avg_scaled(node, y) if kind == "average" else y


class _AdaptiveAvg(_Adaptive):
    optional_attrs = ("dpu_scale",)

    def check(self, graph, node, in_shape, out_shape) -> None:
        super().check(graph, node, in_shape, out_shape)
        _check_dpu_scale(node)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return _avg_scale(node, K.adaptive_avg_pool(xs[0], node.attrs["output_size"]))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        # aten::adaptive_avg_pool{1,2}d (channels-last inputs)
        return L.channels_last(K.adaptive_avg_pool(L.channels_first(xs[0]), list(op.attrs["output_size"])))


class _AdaptiveMax(_Adaptive):
    cle_extension = True  # the reference does not equalize through it
    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return K.adaptive_max_pool(xs[0], node.attrs["output_size"])


class _TwoD:
    """Mixin of the 2-D pools the DPU's pool / ALU engines run."""

    def dpu_rule(self, graph, node, t) -> str:
        return _pool_rule(graph, node, t)

    def dpu_engine(self, graph, node, t, device) -> str:
        return _pool_engine(node, t)


class _OneD:
    """Mixin of the 1-D pools (no DPU engine runs them)."""

    def dpu_rule(self, graph, node, t) -> str:
        return _ONE_D.format(node.op_type)


# --- the ops --------------------------------------------------------------------------------------


@register("max_pool1d", nndct_op="nndct_maxpool1d", spatial=1, xir_types=("maxpool1d",))
class MaxPool1d(_OneD, _MaxPool):
    def to_xmodel(self, b, node, xs) -> str:
        attrs = _window_attrs(node)
        attrs["global"] = False
        return b.emit(node, "maxpool1d", {"input": xs}, attrs)


@register("max_pool2d", nndct_op="nndct_maxpool", spatial=2, xir_types=("maxpool2d",))
class MaxPool2d(_TwoD, _MaxPool):
    def to_xmodel(self, b, node, xs) -> str:
        return b.emit(node, "maxpool2d", {"input": xs}, _window_attrs(node))


@register("avg_pool1d", nndct_op="aten::avg_pool1d", spatial=1, xir_types=("aten::avg_pool1d",))
class AvgPool1d(_OneD, _AvgPool):
    def to_xmodel(self, b, node, xs) -> str:
        a = node.attrs
        attrs = {"kernel": list(a["kernel"]), "stride": list(a["stride"]),
                 "pad": [a["padding"][0], a["padding"][0]], "ceil_mode": bool(a["ceil_mode"]),
                 "count_include_pad": bool(a["count_include_pad"])}
        return b.scaled(node, b.pool_core(node, "aten::avg_pool1d", xs, attrs))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        a = op.attrs
        pad = list(a["pad"])
        return L.channels_last(K.avg_pool(L.channels_first(xs[0]), list(a["kernel"]), list(a["stride"]),
                                          [pad[0]], bool(a["ceil_mode"]), bool(a["count_include_pad"])))


@register("avg_pool2d", nndct_op="nndct_avgpool", spatial=2, xir_types=("avgpool2d",))
class AvgPool2d(_TwoD, _AvgPool):
    def to_xmodel(self, b, node, xs) -> str:
        attrs = _window_attrs(node)
        attrs.update(count_include_pad=bool(node.attrs["count_include_pad"]),
                     count_include_invalid=False)
        return b.scaled(node, b.pool_core(node, "avgpool2d", xs, attrs))


@register("adaptive_avg_pool1d", nndct_op="aten::adaptive_avg_pool1d", spatial=1,
          xir_types=("aten::adaptive_avg_pool1d",))
class AdaptiveAvgPool1d(_OneD, _AdaptiveAvg):
    def to_xmodel(self, b, node, xs) -> str:
        core = b.pool_core(node, "aten::adaptive_avg_pool1d", xs,
                           {"output_size": [int(node.attrs["output_size"][0])]})
        return b.scaled(node, core)


@register("adaptive_avg_pool2d", nndct_op="nndct_adaptive_avg_pool2d", spatial=2,
          xir_types=("aten::adaptive_avg_pool2d",))
class AdaptiveAvgPool2d(_TwoD, _AdaptiveAvg):
    def to_xmodel(self, b, node, xs) -> str:
        _, _, h, w = b.shape(node.inputs[0])
        oh, ow = node.attrs["output_size"]
        if h % oh or w % ow:
            core = b.pool_core(node, "aten::adaptive_avg_pool2d", xs, {"output_size": [int(oh), int(ow)]})
        else:
            kh, kw = h // oh, w // ow
            attrs = {"kernel": [kw, kh], "stride": [kw, kh], "pad_mode": "FLOOR",
                     "pad": [0, 0, 0, 0], "global": (oh, ow) == (1, 1),
                     "count_include_pad": True, "count_include_invalid": False}
            core = b.pool_core(node, "avgpool2d", xs, attrs)
        return b.scaled(node, core)


@register("adaptive_max_pool1d", nndct_op="aten::adaptive_max_pool1d", spatial=1)
class AdaptiveMaxPool1d(_OneD, _AdaptiveMax):
    """return_indices=False only."""

    def to_xmodel(self, b, node, xs) -> str:
        _, (k,) = _adaptive_max_window(b, node)
        attrs = {"kernel": [k], "stride": [k], "pad_mode": "FLOOR", "pad": [0, 0], "global": False}
        return b.emit(node, "maxpool1d", {"input": xs}, attrs)


@register("adaptive_max_pool2d", nndct_op="aten::adaptive_max_pool2d", spatial=2)
class AdaptiveMaxPool2d(_TwoD, _AdaptiveMax):
    """return_indices=False only."""

    def to_xmodel(self, b, node, xs) -> str:
        _, (kh, kw) = _adaptive_max_window(b, node)
        attrs = {"kernel": [kw, kh], "stride": [kw, kh], "pad_mode": "FLOOR", "pad": [0, 0, 0, 0],
                 "global": tuple(node.attrs["output_size"]) == (1, 1)}
        return b.emit(node, "maxpool2d", {"input": xs}, attrs)


@register("mean", nndct_op="nndct_mean", attrs=("dims", "keepdim"), optional_attrs=("dpu_scale",),
          xir_types=("reduction_mean",))
class Mean(OpDef):
    """attrs: `dims` (non-negative axes), `keepdim`."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        check_dims(node, len(in_shape))
        _check_dpu_scale(node)

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        x = xs[0]
        dims = [int(d) % x.ndim for d in node.attrs["dims"]]
        return _avg_scale(node, K.mean(x, dims, bool(node.attrs["keepdim"])))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        x = xs[0]
        return K.mean(x, [int(d) % x.ndim for d in op.attrs["axis"]], bool(op.attrs["keep_dims"]))

    def to_xmodel(self, b, node, xs) -> str:
        in_shape = b.shape(node.inputs[0])
        rank = len(in_shape)
        dims = sorted({int(d) % rank for d in node.attrs["dims"]})
        keep = bool(node.attrs["keepdim"])
        perm = L.xir_perm(rank)
        kept_torch = [d for d in range(rank) if keep or d not in dims]
        xir_order = [kept_torch.index(p) for p in perm if keep or p not in dims]
        direct = tuple(xir_order) == L.xir_perm(len(kept_torch))
        scaled = node.attrs.get("dpu_scale") is not None
        if direct:
            attrs = {"axis": [perm.index(d) for d in dims], "keep_dims": keep}
            if not scaled:
                return b.emit(node, "reduction_mean", {"input": xs}, attrs)
            return b.scaled(node, b.pool_core(node, "reduction_mean", xs, attrs))
        if scaled:
            raise ExportUnsupported("a mean with dpu_scale whose reduced layout differs from XIR's")
        return b.emit(node, "reduction_mean", {"input": [b.torch_in(xs[0])]},
                      {"axis": dims, "keep_dims": keep}, torch_out=True)

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        axes = b.init(f"{n}_axes", np.array([int(d) for d in node.attrs["dims"]], np.int64))
        y = b.add("ReduceMean", [xs[0], axes], n, keepdims=int(bool(node.attrs["keepdim"])))
        return b.avg_scaled(node, y)

    def dpu_rule(self, graph, node, t) -> str:
        in_shape = R.input_shape(graph, node)
        dims = node.attrs.get("dims")
        dims = (dims,) if isinstance(dims, int) else tuple(dims or ())
        if in_shape is not None:
            dims = tuple(d % len(in_shape) for d in dims)
        if in_shape is None or len(in_shape) != 4 or sorted(dims) != [2, 3]:
            return (f"DPU only supports mean over the spatial dimensions (2, 3) of a 4-D tensor "
                    f"(global average pooling), got dims {list(dims)}.")
        has_avg = (t.alu is not None and "avg_pool" in t.alu.types) or \
            (t.pool is not None and "avg" in t.pool.types)
        return "" if has_avg else f"{t.name} does not support average pooling."

    def dpu_engine(self, graph, node, t, device) -> str:
        return _pool_engine(node, t)
