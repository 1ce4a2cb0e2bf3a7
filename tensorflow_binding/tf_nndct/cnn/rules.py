"""The capture rules of the Keras front end: one per Keras layer type, onto registry ops.

Each rule maps one layer call onto ops of `nndct_shared.graph.ops` exactly as the PyTorch
front end maps the equivalent `torch.nn` layer (`pytorch_nndct/parse/lower.py`): same op
types, attrs (tuples in torch order, non-negative axes) and weight layouts, so that the same
network gives the same graph in both frameworks. Keras specifics handled here:

- weights: conv kernels `[*K, I/g, O]` -> `[O, I/g, *K]`, depthwise `[*K, C, m]` ->
  `[C*m, 1, *K]`, transposed conv `[*K, O, I]` -> `[I, O, *K]`, Dense `[in, out]` -> `[out, in]`
  (rows reordered when it reads a flattened feature map, see `capture.py`);
- padding: `'valid'` is 0; `'same'` is the symmetric padding it amounts to. Where 'same' pads
  one more element after than before (an even window with stride 1, or stride > 1 on some
  sizes) a convolution has no torch form and is refused; a pool takes it as `ceil_mode`
  (the extra window is clipped, as Keras clips it) when that gives the same windows;
- fused `activation=` arguments become their own activation node after the layer (the fix
  plan then fuses conv + relu as the DPU does); Dense on a rank-3/4 input is a 1x1 conv (Keras
  applies it to the channel axis);
- global pools are the adaptive pools with output size 1, followed by `flatten` unless
  `keepdims=True`.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np

from nndct_shared.cnn import bn_as_scale, fold_bn
from nndct_shared.cnn_export.kernels import pool_output_size
from nndct_shared.graph import Tensor
from nndct_shared.graph.ops import get_op
from nndct_shared.messages import warn

from .capture import CaptureContext, Value, capture_rule, numpy_of
from .keras_graph import LayerCall
from .layout import flatten_permutation, is_order_free, torch_axis, torch_shape

__all__ = ["DPU_LEAKY_SLOPE", "activation_op"]

L = keras.layers
A = keras.activations

#: The LeakyReLU slope of the DPU (26/256), used instead of 0.1 (as the PyTorch front end).
DPU_LEAKY_SLOPE = 0.1015625


# --- shared helpers ---------------------------------------------------------------------------------


def _ints(values: Any, n: int) -> tuple[int, ...]:
    values = tuple(values) if isinstance(values, (list, tuple)) else (values,) * n
    return tuple(int(v) for v in values)


def _channels_last(ctx: CaptureContext, call: LayerCall) -> None:
    fmt = getattr(call.layer, "data_format", "channels_last")
    if fmt not in (None, "channels_last"):
        raise ctx.fail(call, f" (data_format='{fmt}'; only channels_last is supported)")


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of Keras/TensorFlow 'same' on one spatial dim."""
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _conv_padding(ctx: CaptureContext, call: LayerCall, sizes: tuple[int, ...], kernel: tuple[int, ...],
                  stride: tuple[int, ...], dilation: tuple[int, ...]) -> list[tuple[int, int]]:
    """(before, after) per spatial dim of a conv layer's padding ('valid' or 'same')."""
    padding = call.layer.padding
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding != "same":
        raise ctx.fail(call, f" (padding='{padding}')")
    return [same_pads(*args) for args in zip(sizes, kernel, stride, dilation)]


def _pad_node(ctx: CaptureContext, call: LayerCall, x: Value, pairs: list[tuple[int, int]],
              suffix: str = "") -> Value:
    """A constant-zero `pad` node of the spatial dims of channels-last `x` (pairs per spatial
    dim); as torch's F.pad / nn.ZeroPad2d it carries its own fix."""
    if x.perm is not None:
        raise ctx.fail(call, " (it pads a flattened feature map)")
    shape = (x.keras_shape[0], *(d + b + a for d, (b, a) in zip(x.keras_shape[1:-1], pairs)), x.keras_shape[-1])
    pads = ((0, 0), (0, 0), *((int(b), int(a)) for b, a in pairs))  # torch order: N, C, spatial
    return ctx.add(call, "pad", [x], shape, attrs={"pads": pads, "mode": "constant", "value": 0.0}, suffix=suffix,
                   layer_type="pad" if suffix else None)


def _spatial(value: Value) -> tuple[int, ...]:
    return tuple(value.keras_shape[1:-1])


def _bias(ctx: CaptureContext, call: LayerCall, params: dict[str, Tensor], part: str = "") -> None:
    if getattr(call.layer, "use_bias", False) and call.layer.bias is not None:
        params["bias"] = ctx.param(call, "bias", numpy_of(call.layer.bias), part)


def _spatial_rank(ctx: CaptureContext, call: LayerCall, x: Value, n: int) -> None:
    if len(x.keras_shape) != n + 2:
        raise ctx.fail(call, f" (input of rank {len(x.keras_shape)}, expected {n + 2})")


# --- activations --------------------------------------------------------------------------------


def activation_op(ctx: CaptureContext, call: LayerCall, fn: Any) -> tuple[str, dict[str, Any]] | None:
    """(op type, attrs) of a Keras activation function; None for `linear`."""
    if fn is None or fn is A.linear:
        return None
    relu6 = "relu" if ctx.convert_relu6_to_relu else "relu6"
    simple = {A.relu: "relu", A.relu6: relu6, A.sigmoid: "sigmoid", A.tanh: "tanh",
              A.hard_silu: "hardswish", A.hard_swish: "hardswish"}
    if fn in simple:
        return simple[fn], {}
    if fn in (A.silu, A.swish) and ctx.convert_silu_to_hswish:
        return "hardswish", {}
    if fn is A.leaky_relu:
        return "leaky_relu", {"alpha": 0.2}
    if fn is A.softmax:
        return "softmax", {}
    name = getattr(fn, "__name__", repr(fn))
    raise ctx.fail(call, f" (activation '{name}')")


def _activation_node(ctx: CaptureContext, call: LayerCall, x: Value, op: str, attrs: dict[str, Any],
                     suffix: str = "") -> Value:
    if op == "leaky_relu":
        slope = float(attrs["alpha"])
        if slope == 0.1:
            warn("LEAKYRELU", node=ctx.node_name(call, suffix), slope=slope)
            slope = DPU_LEAKY_SLOPE
        attrs = {"alpha": slope}
    if op == "softmax":
        attrs = {"dim": torch_axis(-1, len(x.keras_shape))}
    layer_type = None if not suffix else op
    return ctx.add(call, op, [x], x.keras_shape, attrs=attrs, suffix=suffix, layer_type=layer_type)


def fused_activation(ctx: CaptureContext, call: LayerCall, y: Value) -> Value:
    """The `activation=` of a conv / Dense layer as its own node `<layer>/<op>` after `y`."""
    found = activation_op(ctx, call, getattr(call.layer, "activation", None))
    if found is None:
        return y
    op, attrs = found
    return _activation_node(ctx, call, y, op, attrs, suffix=f"/{op}")


@capture_rule(L.Activation, keeps_order=True)
def activation(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    found = activation_op(ctx, call, call.layer.activation)
    if found is None:  # linear: the capture treats it as an alias; kept for completeness
        return [xs[0]]
    return [_activation_node(ctx, call, xs[0], *found)]


@capture_rule(L.ReLU, keeps_order=True)
def relu(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    layer = call.layer
    max_value = None if layer.max_value is None else float(layer.max_value)
    slope, threshold = float(layer.negative_slope), float(layer.threshold)
    if threshold != 0.0:
        raise ctx.fail(call, f" (threshold={threshold})")
    if max_value is None:
        op, attrs = ("relu", {}) if slope == 0.0 else ("leaky_relu", {"alpha": slope})
    elif max_value == 6.0 and slope == 0.0:
        op, attrs = ("relu" if ctx.convert_relu6_to_relu else "relu6"), {}
    else:
        raise ctx.fail(call, f" (max_value={max_value}, negative_slope={slope}; supported: ReLU(), "
                             "ReLU(max_value=6), ReLU(negative_slope=a))")
    return [_activation_node(ctx, call, xs[0], op, attrs)]


@capture_rule(L.LeakyReLU, keeps_order=True)
def leaky_relu(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    return [_activation_node(ctx, call, xs[0], "leaky_relu", {"alpha": float(call.layer.negative_slope)})]


@capture_rule(L.Softmax, keeps_order=True)
def softmax(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    axis = call.layer.axis
    rank = len(xs[0].keras_shape)
    if isinstance(axis, (list, tuple)) or int(axis) % rank != rank - 1:
        raise ctx.fail(call, f" (axis={axis}; only the last axis is supported)")
    return [_activation_node(ctx, call, xs[0], "softmax", {})]


# --- convolutions and Dense ------------------------------------------------------------------------


def _conv_node(ctx: CaptureContext, call: LayerCall, x: Value, out_shape: tuple[int, ...], window: dict[str, Any],
               groups: int, params: dict[str, Tensor], suffix: str = "") -> Value:
    """A conv1d / conv2d node; `window`: kernel, stride, padding, dilation (`_window`)."""
    attrs = {**window, "groups": int(groups)}
    return ctx.add(call, f"conv{len(window['kernel'])}d", [x], out_shape, attrs=attrs, params=params, suffix=suffix)


def _window(ctx: CaptureContext, call: LayerCall, x: Value) -> tuple[dict[str, Any], Value]:
    """kernel / stride / padding / dilation of a Keras conv layer, in torch order, and the value
    it reads: `x`, or a `<layer>/pad` node before it where 'same' pads one more element after
    than before (an even kernel, or a stride on some sizes), which the graph's convs, padding
    both sides equally as torch.nn.Conv2d, cannot express (the DPU's pad op then does it)."""
    layer = call.layer
    _channels_last(ctx, call)
    n = len(layer.kernel_size)
    _spatial_rank(ctx, call, x, n)
    kernel, stride = _ints(layer.kernel_size, n), _ints(layer.strides, n)
    dilation = _ints(layer.dilation_rate, n)
    pairs = _conv_padding(ctx, call, _spatial(x), kernel, stride, dilation)
    if any(before != after for before, after in pairs):
        x = _pad_node(ctx, call, x, pairs, suffix="/pad")
        pairs = [(0, 0)] * n
    return {"kernel": kernel, "stride": stride, "padding": tuple(b for b, _ in pairs), "dilation": dilation}, x


def _pointwise_window(n: int) -> dict[str, Any]:
    ones = (1,) * n
    return {"kernel": ones, "stride": ones, "padding": (0,) * n, "dilation": ones}


@capture_rule(L.Conv1D, L.Conv2D)
def conv(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    layer = call.layer
    window, x = _window(ctx, call, xs[0])
    n = len(window["kernel"])
    k = numpy_of(layer.kernel)                                   # [*K, I/g, O]
    params = {"weight": ctx.param(call, "weight", np.ascontiguousarray(k.transpose(n + 1, n, *range(n))))}
    _bias(ctx, call, params)
    y = _conv_node(ctx, call, x, ctx.output_shape(call), window, int(layer.groups), params)
    return [fused_activation(ctx, call, y)]


def _depthwise_weight(k: np.ndarray) -> np.ndarray:
    """Keras depthwise kernel `[*K, C, m]` -> torch `[C*m, 1, *K]` (output channel c*m + q)."""
    n = k.ndim - 2
    c, m = k.shape[-2:]
    w = k.transpose(n, n + 1, *range(n))                          # [C, m, *K]
    return np.ascontiguousarray(w.reshape((c * m, 1) + tuple(k.shape[:n])))


@capture_rule(L.DepthwiseConv1D, L.DepthwiseConv2D)
def depthwise_conv(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    layer = call.layer
    window, x = _window(ctx, call, xs[0])
    params = {"weight": ctx.param(call, "weight", _depthwise_weight(numpy_of(layer.kernel)))}
    _bias(ctx, call, params)
    y = _conv_node(ctx, call, x, ctx.output_shape(call), window, x.keras_shape[-1], params)
    return [fused_activation(ctx, call, y)]


@capture_rule(L.SeparableConv1D, L.SeparableConv2D)
def separable_conv(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """A depthwise conv `<layer>/depthwise` (no bias) then a pointwise 1x1 conv `<layer>` with
    the bias: what Keras computes, as two graph nodes (params `.depthwise.` / `.pointwise.`)."""
    layer = call.layer
    window, x = _window(ctx, call, xs[0])
    n = len(window["kernel"])
    depthwise = _depthwise_weight(numpy_of(layer.depthwise_kernel))
    out_shape = ctx.output_shape(call)
    mid_shape = out_shape[:-1] + (depthwise.shape[0],)
    dw = _conv_node(ctx, call, x, mid_shape, window, x.keras_shape[-1],
                    {"weight": ctx.param(call, "weight", depthwise, "depthwise")}, suffix="/depthwise")
    pk = numpy_of(layer.pointwise_kernel)                        # [1.., C*m, O]
    pointwise = np.ascontiguousarray(pk.reshape(pk.shape[-2:]).T.reshape((pk.shape[-1], pk.shape[-2]) + (1,) * n))
    params = {"weight": ctx.param(call, "weight", pointwise, "pointwise")}
    _bias(ctx, call, params, "pointwise")
    y = _conv_node(ctx, call, dw, out_shape, _pointwise_window(n), 1, params)
    return [fused_activation(ctx, call, y)]


@capture_rule(L.ZeroPadding1D, L.ZeroPadding2D)
def zero_padding(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """Zeros around the spatial dims: a `pad` node (constant 0), as torch's nn.ZeroPad2d."""
    layer, x = call.layer, xs[0]
    _channels_last(ctx, call)
    n = 1 if isinstance(layer, L.ZeroPadding1D) else 2
    _spatial_rank(ctx, call, x, n)
    pairs = [tuple(layer.padding)] if n == 1 else [tuple(p) for p in layer.padding]
    return [_pad_node(ctx, call, x, [(int(b), int(a)) for b, a in pairs])]


def transposed_padding(size: int, out: int, kernel: int, stride: int, dilation: int,
                       padding: str) -> tuple[int, int] | None:
    """(padding, output_padding) of torch's conv_transpose that gives Keras' output of length
    `out` from `size`, or None when there is none. TensorFlow crops the full transposed output
    `(size - 1) * stride + span` by the 'same' padding of the forward conv of an input of
    length `out` (before) and the rest after; torch crops `padding` before and
    `padding - output_padding` after."""
    span = dilation * (kernel - 1) + 1
    full = (size - 1) * stride + span
    before = 0 if padding == "valid" else max((size - 1) * stride + span - out, 0) // 2
    output_padding = out - (full - 2 * before)
    if 0 <= output_padding < max(stride, dilation):
        return before, output_padding
    return None


@capture_rule(L.Conv2DTranspose)
def conv_transpose(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    layer, x = call.layer, xs[0]
    _channels_last(ctx, call)
    _spatial_rank(ctx, call, x, 2)
    kernel, stride = _ints(layer.kernel_size, 2), _ints(layer.strides, 2)
    dilation = _ints(layer.dilation_rate, 2)
    out_shape = ctx.output_shape(call)
    if layer.padding not in ("valid", "same"):
        raise ctx.fail(call, f" (padding='{layer.padding}')")
    pads = [transposed_padding(*args, layer.padding) for args in
            zip(_spatial(x), out_shape[1:-1], kernel, stride, dilation)]
    if any(p is None for p in pads):
        raise ctx.fail(call, f" (padding='{layer.padding}' with kernel {list(kernel)} and strides "
                             f"{list(stride)} crops the transposed output asymmetrically, which "
                             "torch.nn.ConvTranspose2d's padding / output_padding cannot express)")
    k = numpy_of(layer.kernel)                                   # [kh, kw, O, I]
    weight = np.ascontiguousarray(k.transpose(3, 2, 0, 1))      # [I, O, kh, kw]
    params = {"weight": ctx.param(call, "weight", weight)}
    _bias(ctx, call, params)
    attrs = {"kernel": kernel, "stride": stride, "padding": tuple(p[0] for p in pads), "dilation": dilation,
             "groups": 1, "output_padding": tuple(p[1] for p in pads)}  # the PyTorch front end's order
    y = ctx.add(call, "conv_transpose2d", [x], out_shape, attrs=attrs, params=params)
    return [fused_activation(ctx, call, y)]


@capture_rule(L.Dense, takes_permuted=True)
def dense(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """`linear` on a rank-2 input (rows reordered for a flattened feature map), a 1x1 conv on a
    rank-3/4 one (Keras applies Dense to the channel axis)."""
    layer, x = call.layer, xs[0]
    k = numpy_of(layer.kernel)                                   # [in, out]
    rank = len(x.keras_shape)
    out_shape = ctx.output_shape(call)
    if rank == 2:
        rows = k if x.perm is None else k[x.perm]
        params = {"weight": ctx.param(call, "weight", np.ascontiguousarray(rows.T))}
        _bias(ctx, call, params)
        y = ctx.add(call, "linear", [x], out_shape, params=params)
    elif rank in (3, 4):
        n = rank - 2
        weight = np.ascontiguousarray(k.T.reshape(k.shape[::-1] + (1,) * n))
        params = {"weight": ctx.param(call, "weight", weight)}
        _bias(ctx, call, params)
        y = _conv_node(ctx, call, x, out_shape, _pointwise_window(n), 1, params)
    else:
        raise ctx.fail(call, f" (input of rank {rank})")
    return [fused_activation(ctx, call, y)]


@capture_rule(L.BatchNormalization, takes_permuted=True)
def batch_norm(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """Folded into the conv / Dense before it when nothing else reads that layer's output (the
    PyTorch front end's rule), else a standalone `scale` per channel."""
    layer, x = call.layer, xs[0]
    rank = len(x.keras_shape)
    axis = layer.axis if not isinstance(layer.axis, (list, tuple)) else (layer.axis[0] if len(layer.axis) == 1 else None)
    if axis is None or int(axis) % rank != rank - 1:
        raise ctx.fail(call, f" (axis={layer.axis}; only the channel axis (-1) is supported)")
    stats = [numpy_of(layer.moving_mean), numpy_of(layer.moving_variance), float(layer.epsilon),
             None if layer.gamma is None else numpy_of(layer.gamma),
             None if layer.beta is None else numpy_of(layer.beta)]
    if x.perm is not None:  # per feature of a flattened map: the features in the graph's order
        stats = [s[x.perm] if isinstance(s, np.ndarray) else s for s in stats]
    producer = ctx.graph.producer(x.tensor)
    axis_of_weight = None if producer is None else get_op(producer.op_type).weight_axis
    foldable = (axis_of_weight is not None and x.perm is None and ctx.read_once(call)
                and not (producer.op_type == "conv_transpose2d" and producer.attrs["groups"] != 1))
    if foldable:
        weight, bias = producer.params["weight"], producer.params.get("bias")
        w, b = fold_bn(weight.data, None if bias is None else bias.data, axis_of_weight, *stats)
        producer.params["weight"] = Tensor(weight.name, data=w)
        bias_name = bias.name if bias is not None else weight.name.rsplit(".", 1)[0] + ".bias"
        producer.params["bias"] = Tensor(bias_name, data=b)
        return [x]
    w, b = bn_as_scale(*stats)
    params = {"weight": ctx.param(call, "weight", w), "bias": ctx.param(call, "bias", b)}
    return [ctx.add(call, "scale", [x], x.keras_shape, attrs={"axis": 1}, params=params, perm=x.perm)]


# --- pooling ----------------------------------------------------------------------------------------


def _pool_attrs(ctx: CaptureContext, call: LayerCall, sizes: tuple[int, ...], outs: tuple[int, ...],
                kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """(padding, ceil_mode) that give Keras' windows (see the module docstring)."""
    padding = call.layer.padding
    if padding == "valid":
        return (0,) * len(kernel), False
    pads = [same_pads(*args) for args in zip(sizes, kernel, stride)]
    if any(after - before not in (0, 1) for before, after in pads):
        raise ctx.fail(call, f" (padding='same' pads {[list(p) for p in pads]})")
    ceil = any(after != before for before, after in pads)
    before = tuple(b for b, _ in pads)
    torch_outs = tuple(pool_output_size(*args, ceil) for args in zip(sizes, kernel, stride, before))
    if torch_outs != tuple(outs):
        raise ctx.fail(call, f" (padding='same' pads {[list(p) for p in pads]}, which torch's symmetric "
                             f"padding and ceil_mode cannot reproduce: windows {list(torch_outs)} instead "
                             f"of {list(outs)})")
    return before, ceil


@capture_rule(L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D)
def pool(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    layer, x = call.layer, xs[0]
    _channels_last(ctx, call)
    n = len(layer.pool_size)
    _spatial_rank(ctx, call, x, n)
    kernel = _ints(layer.pool_size, n)
    stride = kernel if layer.strides is None else _ints(layer.strides, n)
    out_shape = ctx.output_shape(call)
    padding, ceil = _pool_attrs(ctx, call, _spatial(x), out_shape[1:-1], kernel, stride)
    is_max = isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D))
    op = f"{'max' if is_max else 'avg'}_pool{n}d"
    attrs: dict[str, Any] = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil}
    if not is_max:  # Keras averages over the window inside the input
        attrs["count_include_pad"] = layer.padding == "valid"
    return [ctx.add(call, op, [x], out_shape, attrs=attrs)]


@capture_rule(L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D)
def global_pool(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    layer, x = call.layer, xs[0]
    _channels_last(ctx, call)
    n = len(x.keras_shape) - 2
    if n not in (1, 2):
        raise ctx.fail(call, f" (input of rank {len(x.keras_shape)})")
    kind = "avg" if isinstance(layer, (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D)) else "max"
    pooled_shape = (x.keras_shape[0],) + (1,) * n + (x.keras_shape[-1],)
    keep = bool(getattr(layer, "keepdims", False))
    y = ctx.add(call, f"adaptive_{kind}_pool{n}d", [x], pooled_shape, attrs={"output_size": (1,) * n},
                suffix="" if keep else f"/adaptive_{kind}_pool")
    if keep:
        return [y]
    flat = ctx.add(call, "flatten", [y], (x.keras_shape[0], x.keras_shape[-1]),
                   attrs={"start_dim": 1, "end_dim": n + 1})
    return [flat]


# --- merging ----------------------------------------------------------------------------------------


def _same_rank(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> int:
    ranks = {len(v.keras_shape) for v in xs}
    if len(ranks) != 1:
        raise ctx.fail(call, f" (inputs of different ranks {sorted(ranks)})")
    return ranks.pop()


@capture_rule(L.Add, L.Subtract, L.Multiply)
def elementwise(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """Two inputs: one node; more (Add, Multiply): a left-to-right chain `<layer>/partial_<i>`."""
    op = {L.Add: "add", L.Subtract: "sub", L.Multiply: "mul"}[type(call.layer)]
    _same_rank(ctx, call, xs)
    out_shape = ctx.output_shape(call)
    acc = xs[0]
    for i, x in enumerate(xs[1:], start=1):
        last = i == len(xs) - 1
        acc = ctx.add(call, op, [acc, x], out_shape, suffix="" if last else f"/partial_{i}")
    return [acc]


@capture_rule(L.Concatenate, takes_permuted=True)
def concatenate(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """Along the feature axis of rank-2 tensors, flattened feature maps keep their
    channels-first order block by block (the Dense after it takes its rows in that order)."""
    rank = _same_rank(ctx, call, xs)
    axis = torch_axis(call.layer.axis, rank)
    perm = None
    if any(x.perm is not None for x in xs):
        if rank != 2 or axis != 1:
            raise ctx.fail(call, f" (it joins a flattened feature map along axis {call.layer.axis})")
        blocks, offset = [], 0
        for x in xs:
            width = x.keras_shape[1]
            blocks.append(offset + (np.arange(width) if x.perm is None else x.perm))
            offset += width
        perm = np.concatenate(blocks)
    return [ctx.add(call, "concat", xs, ctx.output_shape(call), attrs={"axis": axis}, perm=perm)]


# --- shape ------------------------------------------------------------------------------------------


@capture_rule(L.Flatten, takes_permuted=True)
def flatten(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    x = xs[0]
    _channels_last(ctx, call)
    rank = len(x.keras_shape)
    perm = x.perm if rank == 2 else flatten_permutation(x.keras_shape)
    return [ctx.add(call, "flatten", [x], ctx.output_shape(call), attrs={"start_dim": 1, "end_dim": rank - 1},
                    perm=perm)]


@capture_rule(L.Reshape, takes_permuted=True)
def reshape(ctx: CaptureContext, call: LayerCall, xs: list[Value]) -> list[Value]:
    """Layout-neutral reshapes only (`layout.is_order_free` on both sides), and the reshape of a
    feature map to rank 2 (a flatten for the Dense layers after it)."""
    x = xs[0]
    out_shape = ctx.output_shape(call)
    if len(out_shape) == 2 and (x.perm is not None or not is_order_free(x.keras_shape)):
        perm = x.perm if len(x.keras_shape) == 2 else flatten_permutation(x.keras_shape)
    elif x.perm is None and is_order_free(x.keras_shape) and is_order_free(out_shape):
        perm = None
    else:
        raise ctx.fail(call, f" (reshaping {list(x.keras_shape[1:])} to {list(out_shape[1:])} moves elements "
                             "between Keras' channels-last order and the CNN graph's channels-first one)")
    return [ctx.add(call, "reshape", [x], out_shape, attrs={"shape": torch_shape(out_shape)}, perm=perm)]
