"""Ops with weights: linear, conv1d, conv2d (groups == C_in: depthwise), conv_transpose2d, and
`scale` (a standalone BatchNorm). Weights are in torch layout (see the package docstring)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...cnn_export import flatten_fold as FF
from ...cnn_export import kernels as K
from ...cnn_export import layout as L
from ...inspector import rules as R
from .base import ExportUnsupported, OpContractError, OpDef, int_tuple, is_int, param_array, register

_CONV_ATTRS = ("kernel", "stride", "padding", "dilation", "groups")


# --- shared by the convolutions -------------------------------------------------------------------


def _check_conv(op: OpDef, node, in_shape, out_shape) -> None:
    nsp = op.spatial
    kernel = int_tuple(node, "kernel", nsp, 1)
    int_tuple(node, "stride", nsp, 1)
    int_tuple(node, "padding", nsp, 0)
    int_tuple(node, "dilation", nsp, 1)
    groups = node.attrs["groups"]
    if not is_int(groups) or groups < 1:
        raise OpContractError(f"attr 'groups' must be an int >= 1, got {groups!r}")
    w = node.params["weight"].data
    c_in = in_shape[1]
    if tuple(w.shape[2:]) != kernel:
        raise OpContractError(f"weight shape {list(w.shape)} does not match kernel {list(kernel)}")
    if op.name == "conv_transpose2d":
        int_tuple(node, "output_padding", nsp, 0)
        ok = w.shape[0] == c_in and c_in % groups == 0
        expect = f"[C_in={c_in}, C_out/groups, kh, kw]"
    else:
        ok = w.shape[1] * groups == c_in and w.shape[0] % groups == 0
        expect = f"[C_out, C_in/groups={c_in}/{groups}, ...]"
    if not ok:
        raise OpContractError(f"weight shape {list(w.shape)} does not fit input channels {c_in} "
                              f"and groups {groups}; expected {expect}")
    c_out = w.shape[1] * groups if op.name == "conv_transpose2d" else w.shape[0]
    if out_shape[1] != c_out:
        raise OpContractError(f"output shape {list(out_shape)} has {out_shape[1]} channels, the "
                              f"weight gives {c_out}")
    if "bias" in node.params and node.params["bias"].data.shape != (c_out,):
        raise OpContractError(f"bias shape {list(node.params['bias'].data.shape)} is not [{c_out}]")


def _conv_args(b: Any, node, x: str, weight: np.ndarray) -> dict[str, list[str]]:
    args = {"input": [x], "weights": [b.const(node, "weight", weight)]}
    if "bias" in node.params:
        args["bias"] = [b.const(node, "bias", node.params["bias"].data)]
    return args


def _eval_conv(op: Any, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Every XIR convolution: moved to channels-first, computed by the shared kernels."""
    a = op.attrs
    nc, nl = L.channels_first, L.channels_last
    stride, dilation = L.xir_hw(a["stride"]), L.xir_hw(a.get("dilation", [1] * len(a["stride"])))
    pads = L.xir_pad_pairs(a.get("pad", [0] * (2 * len(a["stride"]))))
    if op.type == "conv1d":
        return nl(K.conv(nc(x), w.transpose(0, 2, 1), bias, stride, pads, dilation))
    if op.type == "conv2d":
        groups = int(a.get("group", 1))
        return nl(K.conv(nc(x), w.transpose(0, 3, 1, 2), bias, stride, pads, dilation, groups))
    if op.type == "depthwise-conv2d":
        m, kh, kw, c = w.shape
        torch_w = w.transpose(3, 0, 1, 2).reshape(c * m, 1, kh, kw)
        return nl(K.conv(nc(x), torch_w, bias, stride, pads, dilation, c))
    # transposed convs: dilate by stride, pad k-1-pad each side, correlate with the stored
    # (already flipped) filter [oc, kh, kw, ic] or [m, kh, kw, c].
    kernel = L.xir_hw(a["kernel"])
    if any(d != 1 for d in dilation):
        raise NotImplementedError(f"{op.name!r}: transposed conv with dilation")
    actual = [(kernel[i] - 1 - before, kernel[i] - 1 - after)
              for i, (before, after) in enumerate(pads)]
    xd = K.dilate_input(nc(x), stride)
    if op.type == "transposed-conv2d":
        return nl(K.conv(xd, w.transpose(0, 3, 1, 2), bias, [1, 1], actual, [1, 1]))
    m, kh, kw, c = w.shape
    torch_w = w.transpose(3, 0, 1, 2).reshape(c * m, 1, kh, kw)
    return nl(K.conv(xd, torch_w, bias, [1, 1], actual, [1, 1], c))


def _conv_onnx(b: Any, node, xs: list[str]) -> str:
    a, n = node.attrs, node.name
    inputs = [xs[0], b.param(node, "weight")]
    if "bias" in node.params:
        inputs.append(b.param(node, "bias"))
    pads = [int(p) for p in a["padding"]] * 2
    attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=pads,
                 dilations=list(a["dilation"]), group=int(a["groups"]))
    if node.op_type == "conv_transpose2d":
        return b.add("ConvTranspose", inputs, n, output_padding=list(a["output_padding"]), **attrs)
    return b.add("Conv", inputs, n, **attrs)


def _conv_engine(graph, node, t) -> str:
    ic, _ = R.channels(graph, node)
    groups = int(node.attrs.get("groups", 1))
    if groups != 1 and ic is not None and groups == ic:
        return f"Depthwise convolution within the limits of the {R.engine_of_kind(t, 'dw')}."
    return "Convolution within the kernel, stride, channel and weight-buffer limits of the conv_engine."


def _reference_conv_attrs(node, c_in: int, c_out: int) -> dict[str, Any]:
    """The attrs vai_q_pytorch 3.x adds to every 2-D conv op: channels in and out, and whether
    the op has a bias (`group` is conv2d's own)."""
    return {"in_dim": int(c_in), "out_dim": int(c_out), "bias_term": "bias" in node.params}


def _is_depthwise_node(op: OpDef, node) -> bool:
    """groups == C_in > 1 (C_in read from the weight: conv `[O, C_in/g, ...]`, transposed conv
    `[C_in, O/g, ...]`)."""
    groups = int(node.attrs.get("groups", 1))
    w = node.params["weight"].shape
    c_in = w[0] if op.weight_axis == 1 else w[1] * groups
    return groups > 1 and groups == c_in


def _bias_eval(args) -> np.ndarray | None:
    return args["bias"][0] if args.get("bias") else None


class _Weighted(OpDef):
    """`products(x, weight) + bias`: `reference` is `products` (float64, no bias) with the bias
    added along `bias_axis` and one rounding (`kernels.add_bias`), so a caller that needs the op
    for several biases (bias correction) computes `products` once, with the op's very bits."""

    params = ("weight",)
    optional_params = ("bias",)
    weight_axis = 0
    fusing_producer = True
    #: the output's channel axis, along which the bias adds
    bias_axis = 1

    def products(self, node, xs) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        return K.add_bias(self.products(node, xs), param_array(node, "bias"), self.bias_axis)


class _Conv(_Weighted):
    attrs = _CONV_ATTRS
    #: the reference's op type of a depthwise node of this op (groups == C_in > 1)
    nndct_depthwise_op = ""

    def nndct_type(self, node) -> str:
        if self.nndct_depthwise_op and _is_depthwise_node(self, node):
            return self.nndct_depthwise_op
        return super().nndct_type(node)

    def check(self, graph, node, in_shape, out_shape) -> None:
        _check_conv(self, node, in_shape, out_shape)

    def products(self, node, xs) -> np.ndarray:
        a = node.attrs
        return K.conv_products(xs[0], param_array(node, "weight"), a["stride"],
                               [(int(p), int(p)) for p in a["padding"]], a["dilation"], int(a["groups"]))

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        return _eval_conv(op, xs[0], args["weights"][0], _bias_eval(args))

    def to_onnx(self, b, node, xs) -> str:
        return _conv_onnx(b, node, xs)


# --- the ops --------------------------------------------------------------------------------------


@register("linear", nndct_op="nndct_dense", cle="weighted", cle_extension=True,
          folds_input_reorder=True, xir_types=("matmul",))
class Linear(_Weighted):
    """x @ weight.T + bias over the last dim; weight `[out, in]`."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        w = node.params["weight"].data
        if w.ndim != 2 or w.shape[1] != in_shape[-1]:
            raise OpContractError(f"weight shape {list(w.shape)} is not [out, in={in_shape[-1]}]")
        if "bias" in node.params and node.params["bias"].data.shape != (w.shape[0],):
            raise OpContractError(f"bias shape {list(node.params['bias'].data.shape)} is not "
                                  f"[{w.shape[0]}]")

    bias_axis = -1

    def products(self, node, xs) -> np.ndarray:
        return K.linear_products(xs[0], param_array(node, "weight"))

    def to_xmodel(self, b, node, xs) -> str:
        weight = node.params["weight"].data
        folded = FF.reads_folded(b.graph, node)
        if folded is not None:  # the flatten before it reshaped channels-last maps
            weight = np.ascontiguousarray(weight[:, FF.channels_last_order(folded)])
        w = b.const(node, "weight", weight)
        args = {"input": [xs[0], w]}
        if "bias" in node.params:
            args["bias"] = [b.const(node, "bias", node.params["bias"].data)]
        attrs = {"transpose_a": False, "transpose_b": True}
        if len(b.shape(node.inputs[0])) <= 2:
            return b.emit(node, "matmul", args, attrs)
        args["input"][0] = b.torch_in(xs[0])
        return b.emit(node, "matmul", args, attrs, torch_out=True)

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        a = op.attrs
        p, q = (np.asarray(v, np.float64) for v in xs)
        if a["transpose_a"]:
            p = np.swapaxes(p, -1, -2)
        if a["transpose_b"]:
            q = np.swapaxes(q, -1, -2)
        out = p @ q
        if args.get("bias"):
            out = out + np.asarray(args["bias"][0], np.float64)
        return K.f32(out)

    def to_onnx(self, b, node, xs) -> str:
        x, n = xs[0], node.name
        w = b.param(node, "weight")
        if len(b.shape(node.inputs[0])) == 2:
            inputs = [x, w] + ([b.param(node, "bias")] if "bias" in node.params else [])
            return b.add("Gemm", inputs, n, transB=1)
        wt = b.add("Transpose", [w], f"{n}_weight_t", perm=[1, 0])
        y = b.add("MatMul", [x, wt], f"{n}_matmul" if "bias" in node.params else n)
        if "bias" in node.params:
            y = b.add("Add", [y, b.param(node, "bias")], n)
        return y

    def dpu_rule(self, graph, node, t) -> str:
        ic, oc = R.channels(graph, node)   # a linear layer runs as a 1x1 conv2d on the conv engine
        return R.check_channels(ic, oc, t.conv.input_channel_parallel)

    def dpu_engine(self, graph, node, t, device) -> str:
        return "Runs as a 1x1 convolution on the conv_engine."


@register("conv1d", nndct_op="nndct_conv1d", spatial=1, cle="weighted", xir_types=("conv1d",))
class Conv1d(_Conv):
    """weight `[O, I/groups, K]`."""

    nndct_depthwise_op = "nndct_depthwise_conv1d"

    def to_xmodel(self, b, node, xs) -> str:
        a = node.attrs
        if int(a["groups"]) != 1:
            raise ExportUnsupported("XIR conv1d has no groups; only groups=1 is supported")
        c_in = b.shape(node.inputs[0])[1]
        weight = L.xir_conv_weight(node.params["weight"].data, 1, c_in)
        p = int(a["padding"][0])
        return b.emit(node, "conv1d", _conv_args(b, node, xs[0], weight),
                      {"kernel": list(a["kernel"]), "stride": list(a["stride"]),
                       "dilation": list(a["dilation"]), "pad_mode": "FLOOR", "pad": [p, p]})

    def dpu_rule(self, graph, node, t) -> str:
        return f"DPU does not support {node.op_type} (only 2-D convolution and pooling)."


@register("conv2d", nndct_op="nndct_conv2d", spatial=2, cle="weighted",
          xir_types=("conv2d", "depthwise-conv2d"))
class Conv2d(_Conv):
    """weight `[O, I/groups, kh, kw]`; groups == C_in is a depthwise convolution."""

    nndct_depthwise_op = "nndct_depthwise_conv2d"

    def to_xmodel(self, b, node, xs) -> str:
        a = node.attrs
        groups = int(a["groups"])
        c_in = b.shape(node.inputs[0])[1]
        c_out = node.params["weight"].data.shape[0]
        weight = L.xir_conv_weight(node.params["weight"].data, groups, c_in)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (a["kernel"], a["stride"], a["padding"],
                                                  a["dilation"])
        attrs: dict[str, Any] = {"kernel": [kw, kh], "stride": [sw, sh], "dilation": [dw, dh],
                                 "pad_mode": "FLOOR", "pad": [pw, pw, ph, ph]}
        if L.is_depthwise(groups, c_in, c_out):
            op_type = "depthwise-conv2d"
        else:
            op_type = "conv2d"
            attrs["group"] = groups
        attrs.update(_reference_conv_attrs(node, c_in, c_out))
        return b.emit(node, op_type, _conv_args(b, node, xs[0], weight), attrs)

    def dpu_rule(self, graph, node, t) -> str:
        groups = int(node.attrs.get("groups", 1))
        ic, oc = R.channels(graph, node)
        if groups != 1:
            if ic is not None and groups == ic:
                return _depthwise_rule(graph, node, t)
            return (f"DPU only supports 'groups' 1 (conv2d) or input_channel (depthwise-conv2d), "
                    f"got groups={groups} with input_channel={ic}.")
        kernel = R.pair(node.attrs.get("kernel"), 1)
        stride = R.pair(node.attrs.get("stride"), 1)
        dilation = R.pair(node.attrs.get("dilation"), 1)
        padding = R.pair(node.attrs.get("padding"), 0)
        conv = t.conv
        msg = R.check_limit("kernel", kernel, conv.kernel)
        if msg:
            return msg
        if ic is not None:
            bank = conv.weight_bank
            depth = (kernel[0] * kernel[1] * math.ceil(ic / bank.bank_width)
                     * math.ceil(conv.output_channel_parallel / bank.bank_num))
            if depth > bank.bank_depth:
                return (f"Weights({oc}, {ic}, {R.dims(kernel)}) are too large for the weight buffer: "
                        f"'kernel_h * kernel_w * ceil(input_channel / bank_width) * "
                        f"ceil(output_channel_parallel / bank_num)'({depth}) must be less than or "
                        f"equal to {bank.bank_depth}.")
        if not R.covers_input(graph, node, kernel):
            msg = R.check_limit("stride", stride, conv.stride)
            if msg:
                return msg
        msg = R.check_channels(ic, oc, conv.input_channel_parallel, max(dilation))
        return msg or R.check_pad(padding, kernel, dilation, None)

    def dpu_engine(self, graph, node, t, device) -> str:
        return _conv_engine(graph, node, t)


def _depthwise_rule(graph, node, t) -> str:
    engine = R.dw_engine(t)
    if engine is None:
        return f"{t.name} does not have depthwise-conv-engine."
    kernel_limit, stride_limit, cp, pad_limit = engine
    kernel = R.pair(node.attrs.get("kernel"), 1)
    stride = R.pair(node.attrs.get("stride"), 1)
    dilation = R.pair(node.attrs.get("dilation"), 1)
    padding = R.pair(node.attrs.get("padding"), 0)
    msg = R.kernel_stride_problem(graph, node, kernel, stride, kernel_limit, stride_limit)
    if msg:
        return msg
    ic, oc = R.channels(graph, node)
    msg = R.check_channels(ic, oc, cp, max(dilation))
    return msg or R.check_pad(padding, kernel, dilation, pad_limit)


@register("conv_transpose2d", nndct_op="nndct_conv_transpose_2d",
          attrs=_CONV_ATTRS + ("output_padding",), spatial=2, weight_axis=1, cle="weighted",
          xir_types=("transposed-conv2d", "transposed-depthwise-conv2d"))
class ConvTranspose2d(_Conv):
    """weight `[I, O/groups, kh, kw]` (output channels on axis 1)."""

    nndct_depthwise_op = "nndct_depthwise_conv_transpose_2d"

    def products(self, node, xs) -> np.ndarray:
        a = node.attrs
        return K.conv_transpose_products(xs[0], param_array(node, "weight"), a["stride"], a["padding"],
                                         a["output_padding"], a["dilation"], int(a["groups"]))

    def to_xmodel(self, b, node, xs) -> str:
        a = node.attrs
        groups = int(a["groups"])
        c_in = b.shape(node.inputs[0])[1]
        if tuple(a["dilation"]) != (1, 1):
            raise ExportUnsupported("transposed conv with dilation != 1 has no XIR form here")
        if groups == 1:
            op_type = "transposed-conv2d"
        elif groups == c_in:
            op_type = "transposed-depthwise-conv2d"
        else:
            raise ExportUnsupported(f"transposed conv with groups={groups} (neither 1 nor C_in)")
        weight = L.xir_transposed_weight(node.params["weight"].data)
        (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
        oph, opw = a["output_padding"]
        attrs = {"kernel": [kw, kh], "stride": [sw, sh], "dilation": [1, 1],
                 "pad_mode": "FLOOR", "pad": [pw, pw - opw, ph, ph - oph]}
        c_out = node.params["weight"].data.shape[1] * groups
        attrs.update(_reference_conv_attrs(node, c_in, c_out))
        return b.emit(node, op_type, _conv_args(b, node, xs[0], weight), attrs)

    def dpu_rule(self, graph, node, t) -> str:
        if any(int(p) != 0 for p in R.pair(node.attrs.get("output_padding"), 0)):
            return "DPU does not support output_padding."
        kernel = R.pair(node.attrs.get("kernel"), 1)
        stride = R.pair(node.attrs.get("stride"), 1)
        groups = int(node.attrs.get("groups", 1))
        ic, oc = R.channels(graph, node)
        if groups == 1:
            limit, cp = t.conv.kernel, t.conv.input_channel_parallel
        elif ic is not None and groups == ic:
            engine = R.dw_engine(t)
            if engine is None:
                return f"{t.name} does not have depthwise-conv-engine."
            limit, cp = engine[0], engine[2]
        else:
            return (f"DPU only supports 'groups' 1 or input_channel for transposed-conv2d, got "
                    f"groups={groups} with input_channel={ic}.")
        for k, s in zip(kernel, stride):
            # UG1414: kernel_w / stride_w, kernel_h / stride_h within the conv kernel range
            if not (k // s in limit and (k % s == 0 or k // s + 1 in limit)):
                return f"'kernel / stride'({k} / {s}) is not in DPU supported range({limit})."
        return R.check_channels(ic, oc, cp)

    def dpu_engine(self, graph, node, t, device) -> str:
        return _conv_engine(graph, node, t)


@register("scale", nndct_op="nndct_batch_norm", attrs=("axis",), params=("weight", "bias"),
          fusing_producer=True, xir_types=("scale",))
class Scale(OpDef):
    """A standalone BatchNorm: `x * weight + bias` per channel on axis 1."""

    def check(self, graph, node, in_shape, out_shape) -> None:
        rank = len(in_shape)
        if node.attrs["axis"] not in (1, 1 - rank):
            raise OpContractError(f"scale works on the channel axis 1, got axis {node.attrs['axis']!r}")
        for role in ("weight", "bias"):
            if node.params[role].data.shape != (in_shape[1],):
                raise OpContractError(f"{role} shape {list(node.params[role].data.shape)} is not "
                                      f"[C={in_shape[1]}]")

    def reference(self, node, xs, out_shape, custom) -> np.ndarray:
        x = xs[0]
        shape = (1, -1) + (1,) * (x.ndim - 2)
        w = param_array(node, "weight").astype(np.float64).reshape(shape)
        b = param_array(node, "bias").astype(np.float64).reshape(shape)
        return K.f32(x.astype(np.float64) * w + b)

    def to_xmodel(self, b, node, xs) -> str:
        args = {"input": xs, "scale": [b.const(node, "weight", node.params["weight"].data)],
                "bias": [b.const(node, "bias", node.params["bias"].data)]}
        return b.emit(node, "scale", args, {"axis": -1})

    def eval_xir(self, op, xs, args, custom) -> np.ndarray:
        x, a = xs[0], op.attrs
        axis = int(a.get("axis", -1)) % x.ndim
        shape = [1] * x.ndim
        shape[axis] = -1
        out = np.asarray(x, np.float64) * np.asarray(args["scale"][0], np.float64).reshape(shape)
        if args.get("bias"):
            out = out + np.asarray(args["bias"][0], np.float64).reshape(shape)
        return K.f32(out)

    def to_onnx(self, b, node, xs) -> str:
        n = node.name
        rank = len(b.shape(node.inputs[0]))
        shape = (-1,) + (1,) * (rank - 2)
        w = b.param(node, "weight", node.params["weight"].data.reshape(shape))
        bias = b.param(node, "bias", node.params["bias"].data.reshape(shape))
        return b.add("Add", [b.add("Mul", [xs[0], w], f"{n}_mul"), bias], n)

    def dpu_rule(self, graph, node, t) -> str:
        if R.dw_engine(t) is None:       # a standalone BatchNorm runs as a 1x1 depthwise conv
            return f"{t.name} does not have depthwise-conv-engine to run a standalone BatchNorm."
        return ""

    def dpu_engine(self, graph, node, t, device) -> str:
        return ("Standalone BatchNorm, runs as a 1x1 depthwise convolution on the "
                f"{R.engine_of_kind(t, 'dw')}.")
