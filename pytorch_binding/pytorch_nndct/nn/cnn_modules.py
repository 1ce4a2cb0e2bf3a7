"""The modules of a converted CNN model (`<Model>.py` in output_dir): one module per graph node.

Each module computes its op in float with torch and hands its params and its output to the
quantizer's runtime (`quant_runtime`, set by the quantizer), which observes them in calib mode
and fake-quantizes them (fix_neuron) in test mode. Without a runtime a module is a plain float
op, so the generated file also runs on its own. The constructor arguments are the ones written
in `<Model>.py`; params are loaded from the captured graph (BatchNorm already folded).

Each class is the torch side of one op of the registry (`nndct_shared.graph.ops`): `op_type`
names the op and `node_args` gives the constructor arguments of a node of it, which is all the
code generator (`qproc/codegen.py`) needs; `module_class_for` finds the class of an op type.
"""
from __future__ import annotations

from typing import Any, ClassVar, Optional

import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.graph.ops import get_op

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Add", "AvgPool1d", "AvgPool2d", "Cat", "Conv1d",
    "Conv2d", "ConvTranspose2d", "Custom", "Flatten", "Hardswish", "Input", "LeakyReLU", "Linear",
    "MaxPool1d", "MaxPool2d", "Mean", "Mul", "NodeModule", "ReLU", "ReLU6", "Reshape", "Scale",
    "Sigmoid", "Softmax", "Sub", "Tanh", "module_class_for",
    # added with the op coverage of the CNN flow
    "Chunk", "Clamp", "ELU", "GELU", "GroupNorm", "Hardsigmoid", "InstanceNorm", "LayerNorm", "MatMul",
    "Max", "PReLU", "Pad", "Permute", "Resize", "SiLU", "Split", "Sum", "Transpose", "Unsqueeze",
]

_BY_OP: dict[str, type["NodeModule"]] = {}


def module_class_for(op_type: str) -> type["NodeModule"]:
    """The module class of `op_type` (KeyError naming the op when none is defined)."""
    try:
        return _BY_OP[op_type]
    except KeyError:
        raise KeyError(f"op {op_type!r} has no module class in pytorch_nndct.nn.cnn_modules") from None


class NodeModule(nn.Module):
    """Base of the converted model's modules: quantization hooks around `compute`."""

    #: The op of the registry this class computes (set on concrete classes).
    op_type: ClassVar[str] = ""
    #: True when `compute` always returns a new tensor that nothing else holds (not an input, a
    #: view of one, or a param): a runtime that says so (`quantize_outputs_in_place`) may then
    #: fake-quantize it in place, saving a copy of every activation.
    owns_output: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.op_type:
            _BY_OP[cls.op_type] = cls

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        """Constructor arguments (Python literals) of the module of graph node `node`."""
        return {}

    def __init__(self) -> None:
        super().__init__()
        self.node_name = ""
        self.param_names: dict[str, str] = {}
        self.quant_runtime: Any = None

    def compute(self, *inputs: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        y = self.compute(*inputs)
        runtime = self.quant_runtime
        if runtime is None:
            return y
        if self.owns_output and getattr(runtime, "quantize_outputs_in_place", False):
            return runtime.output(self.node_name, y, in_place=True)
        return runtime.output(self.node_name, y)

    def param(self, role: str) -> Optional[torch.Tensor]:
        """The param of `role` as the op sees it: fake-quantized when the runtime says so."""
        value = getattr(self, role, None)
        if value is None or self.quant_runtime is None or role not in self.param_names:
            return value
        return self.quant_runtime.param(self.param_names[role], value)


class Input(NodeModule):
    """A model input (its output carries the input's fix)."""
    op_type = "input"


    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the reference's keyword
        return super().forward(input)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return x


class _Weighted(NodeModule):
    """A layer `op(x, weight) + bias`; `bias_free` computes it without the bias (bias
    correction's shortcut for layers whose quantized sums are exact, `optim.exact_bias`)."""

    owns_output = True

    def _make_params(self, weight_shape: tuple[int, ...], bias: bool, out_channels: int) -> None:
        self.weight = nn.Parameter(torch.zeros(weight_shape), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(out_channels), requires_grad=False) if bias else None

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x, self.param("weight"), self.param("bias"))

    @property
    def bias_axis(self) -> int:
        """The output's channel axis, along which the bias adds (the registry op's)."""
        return get_op(self.op_type).bias_axis

    def bias_free(self, x: torch.Tensor) -> torch.Tensor:
        """The op with the (runtime's) weight and no bias."""
        return self.op(x, self.param("weight"), None)

    def output_l1(self, weight: torch.Tensor) -> torch.Tensor:
        """Per output channel, the float64 sum of |weight| over everything one output value of
        that channel may read (a bound on its sums of products)."""
        return weight.detach().abs().to(torch.float64).flatten(1).sum(1)


class Linear(_Weighted):
    op_type = "linear"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        w = node.params["weight"].shape
        return {"in_features": w[1], "out_features": w[0], "bias": "bias" in node.params}

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self._make_params((out_features, in_features), bias, out_features)

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.linear(x, weight, bias)


class _ConvNd(_Weighted):
    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        a, p = node.attrs, node.params
        w = p["weight"].shape
        return {"in_channels": w[1] * a["groups"], "out_channels": w[0], "kernel_size": a["kernel"],
                "stride": a["stride"], "padding": a["padding"], "dilation": a["dilation"],
                "groups": a["groups"], "bias": "bias" in p}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                 stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...],
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self._make_params((out_channels, in_channels // groups) + tuple(kernel_size), bias, out_channels)


class Conv1d(_ConvNd):
    op_type = "conv1d"

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv1d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    op_type = "conv2d"

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_Weighted):
    op_type = "conv_transpose2d"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        a, p = node.attrs, node.params
        w = p["weight"].shape
        return {"in_channels": w[0], "out_channels": w[1] * a["groups"], "kernel_size": a["kernel"],
                "stride": a["stride"], "padding": a["padding"], "output_padding": a["output_padding"],
                "dilation": a["dilation"], "groups": a["groups"], "bias": "bias" in p}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int], output_padding: tuple[int, int],
                 dilation: tuple[int, int], groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.dilation, self.groups = dilation, groups
        self._make_params((in_channels, out_channels // groups) + tuple(kernel_size), bias, out_channels)

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding, self.groups,
                                  self.dilation)

    def output_l1(self, weight: torch.Tensor) -> torch.Tensor:
        # weight [in, out / groups, kh, kw]: output channel g * (out / groups) + j reads the
        # input channels of group g through weight[group g's rows, j]
        w = weight.detach().abs().to(torch.float64)
        per_group = w.reshape(self.groups, w.shape[0] // self.groups, w.shape[1], -1).sum(dim=(1, 3))
        return per_group.reshape(-1)


class Scale(NodeModule):
    """A standalone BatchNorm: `x * weight + bias` per channel along `axis`."""
    op_type = "scale"
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"num_features": node.params["weight"].shape[0], "axis": node.attrs["axis"]}


    def __init__(self, num_features: int, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis
        self.weight = nn.Parameter(torch.zeros(num_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_features), requires_grad=False)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return x * self.param("weight").view(shape) + self.param("bias").view(shape)


class ReLU(NodeModule):
    op_type = "relu"
    owns_output = True

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)


class ReLU6(NodeModule):
    """ReLU6, or min(relu(x), clip[c]) with the per-channel `clip` levels cross-layer
    equalization sets (the registry's relu6 attr `clip`)."""

    op_type = "relu6"
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        clip = node.attrs.get("clip")
        return {} if clip is None else {"clip": [float(v) for v in clip]}

    def __init__(self, clip: Optional[list[float]] = None) -> None:
        super().__init__()
        levels = None if clip is None else torch.tensor(clip, dtype=torch.float32)
        self.register_buffer("clip", levels, persistent=False)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip is None:
            return F.relu6(x)
        return torch.minimum(F.relu(x), self.clip.to(x.dtype).view((1, -1) + (1,) * (x.dim() - 2)))


class LeakyReLU(NodeModule):
    op_type = "leaky_relu"
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"negative_slope": node.attrs["alpha"]}

    def __init__(self, negative_slope: float) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


class Sigmoid(NodeModule):
    op_type = "sigmoid"
    owns_output = True

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class Tanh(NodeModule):
    op_type = "tanh"
    owns_output = True

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class Hardswish(NodeModule):
    op_type = "hardswish"
    owns_output = True

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


class _Pool(NodeModule):
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        a = node.attrs
        args = {"kernel_size": a["kernel"], "stride": a["stride"], "padding": a["padding"],
                "ceil_mode": a["ceil_mode"]}
        if cls.op_type.startswith("avg"):
            args["count_include_pad"] = a["count_include_pad"]
        return args

    def __init__(self, kernel_size: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad


class MaxPool1d(_Pool):
    op_type = "max_pool1d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, 1, self.ceil_mode)


class MaxPool2d(_Pool):
    op_type = "max_pool2d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, 1, self.ceil_mode)


class AvgPool1d(_Pool):
    op_type = "avg_pool1d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AvgPool2d(_Pool):
    op_type = "avg_pool2d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class _Adaptive(NodeModule):
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"output_size": node.attrs["output_size"]}

    def __init__(self, output_size: tuple[int, ...]) -> None:
        super().__init__()
        self.output_size = output_size


class AdaptiveAvgPool1d(_Adaptive):
    op_type = "adaptive_avg_pool1d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveAvgPool2d(_Adaptive):
    op_type = "adaptive_avg_pool2d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)


class AdaptiveMaxPool1d(_Adaptive):
    op_type = "adaptive_max_pool1d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool1d(x, self.output_size)


class AdaptiveMaxPool2d(_Adaptive):
    op_type = "adaptive_max_pool2d"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool2d(x, self.output_size)


class _Binary(NodeModule):
    """Two tensors, or one tensor and a constant operand `other` at position `other_index`."""
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        if "other" in node.params:
            return {"other_index": node.attrs["other_index"], "other_shape": node.params["other"].shape}
        return {}


    def __init__(self, other_index: Optional[int] = None, other_shape: Optional[tuple[int, ...]] = None) -> None:
        super().__init__()
        self.other_index = other_index
        self.other = None if other_shape is None else nn.Parameter(torch.zeros(other_shape), requires_grad=False)

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def compute(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.other_index is None:
            return self.apply(xs[0], xs[1])
        other = self.param("other")
        return self.apply(other, xs[0]) if self.other_index == 0 else self.apply(xs[0], other)


class Add(_Binary):
    op_type = "add"

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Sub(_Binary):
    op_type = "sub"

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b


class Mul(_Binary):
    op_type = "mul"

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Cat(NodeModule):
    op_type = "concat"
    owns_output = True

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dim": node.attrs["axis"]}

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def compute(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class Flatten(NodeModule):
    op_type = "flatten"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"start_dim": node.attrs["start_dim"], "end_dim": node.attrs["end_dim"]}

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, self.start_dim, self.end_dim)


class Reshape(NodeModule):
    """Reshape to the captured shape; dim 0 follows the input's batch when the capture kept the
    batch in dim 0 (`batch_dim=True`), so other batch sizes work."""
    op_type = "reshape"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        in_shape = graph.tensor(node.inputs[0]).shape
        shape = tuple(node.attrs["shape"])
        return {"shape": shape, "batch_dim": bool(shape and in_shape and shape[0] == in_shape[0])}


    def __init__(self, shape: tuple[int, ...], batch_dim: bool = True) -> None:
        super().__init__()
        self.shape, self.batch_dim = tuple(shape), batch_dim

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_dim:
            return x.reshape((x.shape[0],) + self.shape[1:])
        return x.reshape(self.shape)


class Mean(NodeModule):
    op_type = "mean"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dim": node.attrs["dims"], "keepdim": node.attrs["keepdim"]}

    def __init__(self, dim: tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim, self.keepdim = tuple(dim), keepdim

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean(x, dim=self.dim, keepdim=self.keepdim)


class Softmax(NodeModule):
    op_type = "softmax"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dim": node.attrs["dim"]}

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(x, dim=self.dim)


class Custom(NodeModule):
    """A registered custom op (`pytorch_nndct.utils.register_custom_op`), run in float."""
    op_type = "custom"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        attrs = {k: v for k, v in node.attrs.items() if k != "op_name"}
        return {"op_type": node.attrs["op_name"], "attrs": attrs}


    def __init__(self, op_type: str, attrs: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        from ..utils.custom_op import custom_op_registry

        registry = custom_op_registry()
        if op_type not in registry:
            raise KeyError(f"custom op {op_type!r} is not registered; import the module that defines "
                           "it (with @register_custom_op) before loading this model")
        self.op = registry[op_type]
        self.attrs = dict(attrs or {})
        self.input_names = [n for n in self.op.signature.parameters if n not in self.op.attrs_list]

    def compute(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.op.run(**dict(zip(self.input_names, xs)), **self.attrs)


# --- data movement and resampling (nndct_shared/graph/ops/movement.py) ----------------------------


class Permute(NodeModule):
    op_type = "permute"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dims": tuple(node.attrs["dims"])}

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)


class Transpose(Permute):
    op_type = "transpose"


class Unsqueeze(NodeModule):
    op_type = "unsqueeze"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dim": node.attrs["dim"]}

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.unsqueeze(x, self.dim)


class Chunk(NodeModule):
    """One piece (elements start..end-1 of axis `dim`) of a chunk."""
    op_type = "chunk"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dim": node.attrs["dim"], "start": node.attrs["start"], "end": node.attrs["end"]}

    def __init__(self, dim: int, start: int, end: int) -> None:
        super().__init__()
        self.dim, self.start, self.end = dim, start, end

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.narrow(x, self.dim, self.start, self.end - self.start)


class Split(Chunk):
    """One piece of a split."""
    op_type = "split"


class Pad(NodeModule):
    """F.pad; `pad` in F.pad's order (last axis first)."""
    op_type = "pad"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        pad = tuple(v for pair in reversed(node.attrs["pads"]) for v in pair)
        while len(pad) > 2 and pad[-2:] == (0, 0):     # F.pad needs no trailing zero pairs
            pad = pad[:-2]
        return {"pad": pad, "mode": node.attrs["mode"], "value": float(node.attrs["value"])}

    def __init__(self, pad: tuple[int, ...], mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        self.pad, self.mode, self.value = tuple(pad), mode, value

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.pad, "constant", self.value)
        return F.pad(x, self.pad, self.mode)


class Resize(NodeModule):
    """F.interpolate to `size`, or by `scale_factor` when torch computed the source index with it."""
    op_type = "resize"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        a = node.attrs
        scale = a.get("scale")
        return {"size": tuple(graph.tensor(node.outputs[0]).shape[2:]), "mode": a["mode"],
                "align_corners": bool(a["align_corners"]),
                "scale_factor": None if scale is None else tuple(float(s) for s in scale)}

    def __init__(self, size: tuple[int, int], mode: str, align_corners: bool = False,
                 scale_factor: Optional[tuple[float, float]] = None) -> None:
        super().__init__()
        self.size, self.mode, self.align_corners = tuple(size), mode, align_corners
        self.scale_factor = scale_factor

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        align = self.align_corners if self.mode == "bilinear" else None
        if self.scale_factor is not None:
            return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode, align_corners=align)
        return F.interpolate(x, size=self.size, mode=self.mode, align_corners=align)


# --- activations the DPU runs (nndct_shared/graph/ops/dpu_activations.py) ---------------------------


class Clamp(NodeModule):
    op_type = "clamp"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"min": node.attrs["min"], "max": node.attrs["max"]}

    def __init__(self, min: Optional[float] = None, max: Optional[float] = None) -> None:  # noqa: A002
        super().__init__()
        self.min, self.max = min, max

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.min, self.max)


class PReLU(NodeModule):
    op_type = "prelu"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"num_parameters": node.params["weight"].shape[0]}

    def __init__(self, num_parameters: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_parameters), requires_grad=False)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.param("weight"))


class Hardsigmoid(NodeModule):
    op_type = "hardsigmoid"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        scale = node.attrs.get("dpu_scale")
        return {} if scale is None else {"dpu_scale": float(scale)}

    def __init__(self, dpu_scale: Optional[float] = None) -> None:
        super().__init__()
        self.dpu_scale = dpu_scale

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        y = F.hardsigmoid(x)
        return y if self.dpu_scale is None else y * self.dpu_scale


class MatMul(_Binary):
    op_type = "matmul"

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


# --- ops that run in float (nndct_shared/graph/ops/float_ops.py) -------------------------------------


class GELU(NodeModule):
    op_type = "gelu"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"approximate": node.attrs["approximate"]}

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=self.approximate)


class ELU(NodeModule):
    op_type = "elu"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"alpha": float(node.attrs["alpha"])}

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)


class SiLU(NodeModule):
    op_type = "silu"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


class _Norm(NodeModule):
    """A norm with optional `weight` / `bias` params."""

    def _make_affine(self, shape: tuple[int, ...], weight: bool, bias: bool) -> None:
        self.weight = nn.Parameter(torch.zeros(shape), requires_grad=False) if weight else None
        self.bias = nn.Parameter(torch.zeros(shape), requires_grad=False) if bias else None


class LayerNorm(_Norm):
    op_type = "layer_norm"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"normalized_shape": tuple(node.attrs["normalized_shape"]), "eps": float(node.attrs["eps"]),
                "weight": "weight" in node.params, "bias": "bias" in node.params}

    def __init__(self, normalized_shape: tuple[int, ...], eps: float = 1e-5, weight: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self._make_affine(self.normalized_shape, weight, bias)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.param("weight"), self.param("bias"), self.eps)


class GroupNorm(_Norm):
    op_type = "group_norm"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"num_groups": int(node.attrs["num_groups"]),
                "num_channels": graph.tensor(node.inputs[0]).shape[1], "eps": float(node.attrs["eps"]),
                "weight": "weight" in node.params, "bias": "bias" in node.params}

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, weight: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_groups, self.eps = num_groups, eps
        self._make_affine((num_channels,), weight, bias)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, self.param("weight"), self.param("bias"), self.eps)


class InstanceNorm(_Norm):
    op_type = "instance_norm"

    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"num_features": graph.tensor(node.inputs[0]).shape[1], "eps": float(node.attrs["eps"]),
                "weight": "weight" in node.params, "bias": "bias" in node.params}

    def __init__(self, num_features: int, eps: float = 1e-5, weight: bool = False, bias: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self._make_affine((num_features,), weight, bias)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.param("weight"), bias=self.param("bias"), eps=self.eps)


class _Reduce(NodeModule):
    @classmethod
    def node_args(cls, graph: Any, node: Any) -> dict[str, Any]:
        return {"dim": tuple(node.attrs["dims"]), "keepdim": bool(node.attrs["keepdim"])}

    def __init__(self, dim: tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim, self.keepdim = tuple(dim), keepdim


class Sum(_Reduce):
    op_type = "sum"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x, dim=self.dim, keepdim=self.keepdim)


class Max(_Reduce):
    op_type = "max"

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=self.dim, keepdim=self.keepdim)
