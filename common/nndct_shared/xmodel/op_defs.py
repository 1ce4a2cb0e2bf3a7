"""XIR op definitions: the input args and typed attrs of the op types a quantizer writes.

An XIR reader converts the `op_defs` embedded in a file before it creates any op, checks every
op against its def, and takes each attribute's type from the def's typed default value. So a
writer must (a) embed a def for every op type it uses, (b) give every op one `OpArg` per input
arg of its def, in def order, and (c) encode each attr with the def's kind. This module holds
those facts for the float op types of XIR's built-in registry that a quantizer writes. Names,
occur types, data types, kinds, defaults and list lengths follow XIR (checked against the defs
embedded in the reference xmodels by tests/nndct_shared/xmodel/test_op_defs.py); annotations
are this project's own short descriptions.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import attr_value


class DataType(enum.IntEnum):
    """`xir::DataType::Type`, as stored in `Tensor.data_type` and `OpArgDef.data_type`."""

    INT = 0
    UINT = 1
    XINT = 2
    XUINT = 3
    FLOAT = 4
    BFLOAT = 5
    UNKNOWN = 6


class ArgOccur(enum.IntEnum):
    """How many producers an input arg takes: exactly 1, 0..1, any, at least 1."""

    REQUIRED = 0
    OPTIONAL = 1
    REPEATED = 2
    REQUIRED_AND_REPEATED = 3


class AttrOccur(enum.IntEnum):
    REQUIRED = 0
    OPTIONAL = 1


@dataclass(frozen=True)
class ArgDef:
    name: str
    occur: ArgOccur = ArgOccur.REQUIRED
    data_type: DataType | int = DataType.FLOAT
    annotation: str = ""

    def check_count(self, count: int) -> str | None:
        """Why `count` producers are wrong for this arg, or None if they are fine."""
        if self.occur == ArgOccur.REQUIRED and count != 1:
            return f"input arg {self.name!r} is REQUIRED: it takes exactly 1 op, got {count}"
        if self.occur == ArgOccur.OPTIONAL and count > 1:
            return f"input arg {self.name!r} is OPTIONAL: it takes at most 1 op, got {count}"
        if self.occur == ArgOccur.REQUIRED_AND_REPEATED and count < 1:
            return f"input arg {self.name!r} is REQUIRED_AND_REPEATED: it needs at least 1 op"
        return None


@dataclass(frozen=True)
class AttrDef:
    """One attribute of an op def. `default` is the typed default XIR stores; for REQUIRED
    attrs it is the kind's empty value, which only records the type."""

    name: str
    kind: str
    occur: AttrOccur = AttrOccur.REQUIRED
    default: Any = None
    list_length: int | None = None
    annotation: str = ""

    def __post_init__(self) -> None:
        attr_value.check_kind(self.kind)
        default = attr_value.empty_value(self.kind) if self.default is None else self.default
        object.__setattr__(self, "default", attr_value.normalize(self.kind, default))
        if self.list_length is None:
            scalar = not (
                self.kind == "bytes"
                or attr_value.is_vector_kind(self.kind)
                or attr_value.is_map_kind(self.kind)
            )
            object.__setattr__(self, "list_length", 1 if scalar else 0)


@dataclass(frozen=True)
class OpDef:
    name: str
    args: tuple[ArgDef, ...] = ()
    attrs: tuple[AttrDef, ...] = ()
    annotation: str = ""
    _arg_index: Mapping[str, ArgDef] = field(init=False, repr=False, compare=False)
    _attr_index: Mapping[str, AttrDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "attrs", tuple(self.attrs))
        object.__setattr__(self, "_arg_index", {a.name: a for a in self.args})
        object.__setattr__(self, "_attr_index", {a.name: a for a in self.attrs})

    def arg(self, name: str) -> ArgDef | None:
        return self._arg_index.get(name)

    def attr(self, name: str) -> AttrDef | None:
        return self._attr_index.get(name)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args)

    @property
    def attr_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attrs)


# --- protobuf conversion ----------------------------------------------------------------


def op_def_to_proto(op_def: OpDef, message: Any) -> Any:
    """Fill an `OpDef` message (fields in number order, as XIR writes them)."""
    message.name = op_def.name
    for arg in op_def.args:
        out = message.input_args.add()
        out.name = arg.name
        out.occur_type = int(arg.occur)
        out.data_type = int(arg.data_type)
        out.annotation = arg.annotation
    for attr in op_def.attrs:
        out = message.attrs.add()
        out.name = attr.name
        out.occur_type = int(attr.occur)
        attr_value.to_proto(attr.kind, attr.default, out.default_value)
        out.list_length = attr.list_length
        out.annotation = attr.annotation
    message.annotation = op_def.annotation
    return message


def _enum_or_int(enum_type: type[enum.IntEnum], value: int) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        return value


def op_def_from_proto(message: Any) -> OpDef:
    """Convert an `OpDef` message. Raises ValueError for a def XIR would reject (an attr
    without a typed default value)."""
    args = tuple(
        ArgDef(
            a.name,
            _enum_or_int(ArgOccur, a.occur_type),
            _enum_or_int(DataType, a.data_type),
            a.annotation,
        )
        for a in message.input_args
    )
    attrs = []
    for a in message.attrs:
        try:
            kind, default = attr_value.from_proto(a.default_value)
        except ValueError as exc:
            raise ValueError(
                f"op def {message.name!r}: attr {a.name!r} has no typed default value"
            ) from exc
        attrs.append(
            AttrDef(a.name, kind, _enum_or_int(AttrOccur, a.occur_type), default,
                    a.list_length, a.annotation)
        )
    return OpDef(message.name, args, tuple(attrs), message.annotation)


# --- the built-in registry --------------------------------------------------------------

_R, _O = AttrOccur.REQUIRED, AttrOccur.OPTIONAL
_FEATURE = "The feature maps, any rank."


def _input(occur: ArgOccur = ArgOccur.REQUIRED, note: str = _FEATURE) -> ArgDef:
    return ArgDef("input", occur, DataType.FLOAT, note)


def _unary(name: str, note: str, *attrs: AttrDef) -> OpDef:
    return OpDef(name, (_input(),), attrs, note)


def _broadcast(name: str, formula: str) -> OpDef:
    return OpDef(
        name,
        (_input(ArgOccur.REQUIRED_AND_REPEATED, "Two or more tensors, broadcast NumPy-style."),),
        (),
        f"Element-wise {name} with broadcasting: {formula}.",
    )


def _fix_like(name: str, input_type: DataType, note: str) -> OpDef:
    return OpDef(
        name,
        (ArgDef("input", ArgOccur.REQUIRED, input_type, _FEATURE),),
        (
            AttrDef("fix_point", "int32", _R, annotation="Fractional bits: step is 2^-fix_point."),
            AttrDef("bit_width", "int32", _R, annotation="Total bits of the fixed-point code."),
            AttrDef("round_mode", "string", _R,
                    annotation="STD_ROUND, DPU_ROUND (negative halves round up) or PY3_ROUND."),
            AttrDef("if_signed", "bool", _R, annotation="Signed code range if true."),
        ),
        note,
    )


def _source(name: str, note: str, *extra: AttrDef) -> OpDef:
    return OpDef(
        name,
        (),
        (
            AttrDef("shape", "int32_vec", _R, annotation="Shape of the output tensor."),
            AttrDef("data_type", "string", _R, annotation="Element type, e.g. FLOAT32."),
            *extra,
        ),
        note,
    )


def _layouts(rank: int) -> dict[str, str]:
    """Doc strings of the NHWC (rank 2) or NLC (rank 1) layouts."""
    if rank == 1:
        return {"input": "[batch, length, channels]", "weights": "[out, kernel_length, in]",
                "kernel": "{kernel_length}", "pad": "{left, right}"}
    return {"input": "[batch, height, width, channels]", "weights": "[out, kernel_h, kernel_w, in]",
            "kernel": "{kernel_width, kernel_height}", "pad": "{left, right, top, bottom}"}


def _window_attrs(rank: int, what: str) -> tuple[AttrDef, AttrDef]:
    layout = _layouts(rank)
    return (
        AttrDef("kernel", "int32_vec", _R, list_length=rank,
                annotation=f"{what} size {layout['kernel']}."),
        AttrDef("stride", "int32_vec", _R, list_length=rank,
                annotation="Strides, same layout as kernel."),
    )


def _pad_attrs(rank: int) -> tuple[AttrDef, AttrDef]:
    return (
        AttrDef("pad_mode", "string", _R, annotation="FLOOR, CEIL, SAME or VALID."),
        AttrDef("pad", "int32_vec", _O, [0] * (2 * rank), 2 * rank,
                f"Padding {_layouts(rank)['pad']}."),
    )


def _conv(name: str, rank: int, note: str, *extra: AttrDef) -> OpDef:
    layout = _layouts(rank)
    return OpDef(
        name,
        (
            ArgDef("input", ArgOccur.REQUIRED, DataType.FLOAT, layout["input"]),
            ArgDef("weights", ArgOccur.REQUIRED, DataType.FLOAT, layout["weights"]),
            ArgDef("bias", ArgOccur.OPTIONAL, DataType.FLOAT, "[out]"),
        ),
        (
            *_window_attrs(rank, "Kernel"),
            AttrDef("dilation", "int32_vec", _O, [1] * rank, rank,
                    "Dilation, same layout as kernel."),
            *_pad_attrs(rank),
            *extra,
        ),
        note,
    )


def _pool(name: str, rank: int, note: str, *extra: AttrDef) -> OpDef:
    return OpDef(
        name,
        (_input(note=_layouts(rank)["input"]),),
        (
            *_window_attrs(rank, "Window"),
            *_pad_attrs(rank),
            AttrDef("global", "bool", _O, False, annotation="Pool over the whole spatial extent."),
            *extra,
        ),
        note,
    )


def _reduction(name: str, what: str) -> OpDef:
    return _unary(
        name,
        f"Reduces the input by {what} along `axis`.",
        AttrDef("axis", "int32_vec", _R, annotation="Dimensions to reduce."),
        AttrDef("keep_dims", "bool", _R, annotation="Keep reduced dimensions as size 1."),
    )


def _custom_attrs() -> tuple[AttrDef, ...]:
    return (
        AttrDef("shape", "int32_vec", _R, annotation="Shape of the output tensor."),
        AttrDef("data_type", "string", _R, annotation="Element type of the output tensor."),
    )


_BUILTIN: tuple[OpDef, ...] = (
    _source("data", "Graph input, fed by the user."),
    _source("const", "Constant tensor (weights, bias) stored in the graph.",
            AttrDef("data", "bytes", _R, annotation="Raw little-endian element bytes, row-major.")),
    _fix_like("fix", DataType.FLOAT,
              "Fake quantization: clamp(round(x * 2^fix_point)) * 2^-fix_point."),
    _fix_like("float2fix", DataType.FLOAT, "Float to fixed-point code: round(x * 2^fix_point)."),
    _fix_like("fix2float", DataType.XINT, "Fixed-point code to float: q * 2^-fix_point."),
    OpDef(
        "matmul",
        (_input(ArgOccur.REQUIRED_AND_REPEATED, "Two tensors [..., a, b] and [..., b, c]."),
         ArgDef("bias", ArgOccur.OPTIONAL, DataType.FLOAT, "1-D bias added to the product.")),
        (AttrDef("transpose_a", "bool", _R, annotation="Transpose the last two dims of input[0]."),
         AttrDef("transpose_b", "bool", _R, annotation="Transpose the last two dims of input[1].")),
        "Batched matrix product input[0] x input[1] (+ bias).",
    ),
    _broadcast("add", "input[0] + input[1]"),
    _broadcast("sub", "input[0] - input[1]"),
    _broadcast("mul", "input[0] * input[1]"),
    _broadcast("div", "input[0] / input[1]"),
    _broadcast("min", "min(input[0], input[1])"),
    _broadcast("max", "max(input[0], input[1])"),
    _unary("relu", "f(x) = max(0, x)."),
    _unary("relu6", "f(x) = min(max(x, 0), 6)."),
    _unary("leaky-relu", "f(x) = x if x >= 0 else alpha * x.",
           AttrDef("alpha", "float", _R, annotation="Slope for x < 0.")),
    OpDef("prelu", (_input(), ArgDef("weight", ArgOccur.REQUIRED, DataType.FLOAT,
                                     "Slope per channel (or one value).")),
          (), "f(x) = x if x >= 0 else weight * x."),
    _unary("sigmoid", "f(x) = 1 / (1 + exp(-x))."),
    _unary("tanh", "f(x) = tanh(x)."),
    _unary("hard-sigmoid", "f(x) = relu6(x + 3) / 6."),
    _unary("hard-swish", "f(x) = x * relu6(x + 3) / 6."),
    _unary("hard-tanh", "f(x) = clip(x, -1, 1)."),
    _unary("swish", "f(x) = x * sigmoid(x)."),
    _unary("gelu", "f(x) = x / 2 * (1 + erf(x / sqrt(2)))."),
    _unary("selu", "Scaled exponential linear unit."),
    _unary("elu", "f(x) = x if x > 0 else alpha * (exp(x) - 1).",
           AttrDef("alpha", "float", _O, 1.0, annotation="Scale of the negative part.")),
    _unary("celu", "f(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)).",
           AttrDef("alpha", "float", _O, 1.0, annotation="Scale of the negative part.")),
    _unary("exp", "f(x) = exp(x)."),
    _unary("neg", "f(x) = -x."),
    _conv("conv1d", 1, "1-D convolution over [batch, length, channels]."),
    _conv("conv2d", 2, "2-D convolution over NHWC feature maps (weights OHWI).",
          AttrDef("group", "int32", _O, 1, annotation="Number of channel groups.")),
    _conv("depthwise-conv2d", 2, "Depth-wise 2-D convolution over NHWC feature maps."),
    _conv("transposed-conv2d", 2, "Transposed 2-D convolution over NHWC feature maps."),
    _conv("transposed-depthwise-conv2d", 2, "Depth-wise transposed 2-D convolution."),
    _pool("maxpool1d", 1, "1-D max pooling."),
    _pool("maxpool2d", 2, "2-D max pooling over NHWC feature maps."),
    _pool("avgpool2d", 2, "2-D average pooling over NHWC feature maps.",
          AttrDef("count_include_pad", "bool", _O, True, annotation="Count padded cells."),
          AttrDef("count_include_invalid", "bool", _O, True,
                  annotation="Count cells outside the padded input.")),
    OpDef("concat", (_input(ArgOccur.REQUIRED_AND_REPEATED),),
          (AttrDef("axis", "int32", _R, annotation="Dimension to concatenate along."),),
          "Concatenates the inputs along `axis`."),
    OpDef("stack", (_input(ArgOccur.REQUIRED_AND_REPEATED),),
          (AttrDef("axis", "int32", _R, annotation="New dimension's position."),),
          "Stacks rank-R inputs into one rank-(R+1) tensor."),
    OpDef("reshape",
          (_input(), ArgDef("shape", ArgOccur.OPTIONAL, DataType.INT, "Target shape as a tensor.")),
          (AttrDef("shape", "int32_vec", _O, [0], annotation="Target shape."),),
          "Reshapes without changing the row-major element order."),
    _unary("flatten", "Merges dimensions start_axis..end_axis into one.",
           AttrDef("start_axis", "int32", _R, annotation="First dimension to merge."),
           AttrDef("end_axis", "int32", _R, annotation="Last dimension to merge.")),
    _unary("transpose", "Permutes the dimensions.",
           AttrDef("order", "int32_vec", _R, annotation="New order of the dimensions.")),
    _unary("squeeze", "Removes dimensions of size 1.",
           AttrDef("axis", "int32_vec", _O, annotation="Dimensions to remove (all if empty).")),
    _unary("strided_slice", "NumPy-style slice input[begin:end:strides].",
           AttrDef("begin", "int32_vec", _R, annotation="Start per dimension."),
           AttrDef("end", "int32_vec", _R, annotation="End per dimension."),
           AttrDef("strides", "int32_vec", _R, annotation="Step per dimension.")),
    _unary("pad", "Pads every dimension.",
           AttrDef("paddings", "int32_vec", _R, annotation="{before, after} per dimension."),
           AttrDef("mode", "string", _R, annotation="CONSTANT, REFLECT or SYMMETRIC."),
           AttrDef("constant_values", "float_vec", _O, annotation="Fill values for CONSTANT.")),
    OpDef("resize",
          (_input(), ArgDef("size", ArgOccur.OPTIONAL, DataType.INT, "Output size as a tensor.")),
          (AttrDef("mode", "string", _R, annotation="NEAREST or BILINEAR."),
           AttrDef("align_corners", "bool", _O, False, annotation="Keep corner pixels aligned."),
           AttrDef("half_pixel_centers", "bool", _O, False, annotation="Sample at pixel centers."),
           AttrDef("scale", "float_vec", _O, [1.0, 1.0], 2, "Output / input size {w, h}.")),
          "Resizes NHWC feature maps."),
    _reduction("reduction_mean", "mean"),
    _reduction("reduction_sum", "sum"),
    _reduction("reduction_max", "max"),
    _reduction("reduction_product", "product"),
    _unary("softmax", "f(x) = exp(x) / sum(exp(x)) along `axis`.",
           AttrDef("axis", "int32", _R, annotation="Dimension to normalize.")),
    OpDef("scale",
          (_input(), ArgDef("scale", ArgOccur.REQUIRED, DataType.FLOAT, "1-D, per channel."),
           ArgDef("bias", ArgOccur.OPTIONAL, DataType.FLOAT, "1-D, per channel.")),
          (AttrDef("axis", "int32", _O, -1, annotation="Channel dimension."),),
          "Channel-wise input * scale + bias (folded batch norm)."),
    OpDef("batchnorm",
          (_input(), *(ArgDef(n, ArgOccur.REQUIRED, DataType.FLOAT, "[channels]")
                       for n in ("gamma", "beta", "moving_mean", "moving_var"))),
          (AttrDef("axis", "int32", _R, annotation="Channel dimension."),
           AttrDef("epsilon", "float", _R, annotation="Added to the variance.")),
          "(x - mean) / sqrt(var + epsilon) * gamma + beta."),
    _unary("l2_normalize", "x / sqrt(max(sum(x^2), epsilon)) along `axis`.",
           AttrDef("axis", "int32_vec", _O, annotation="Dimensions to normalize over."),
           AttrDef("epsilon", "double", _O, 1e-12, annotation="Lower bound of the sum.")),
)

#: The built-in defs by op type (read-only).
BUILTIN_OP_DEFS: Mapping[str, OpDef] = MappingProxyType({d.name: d for d in _BUILTIN})

CUSTOM_OP_ANNOTATION = "This operator is not defined by XIR."


def custom_op_def(op_type: str) -> OpDef:
    """The def XIR registers on the fly for an op type it does not know (e.g. an
    `aten::...` op): any number of FLOAT inputs, attrs `shape` and `data_type`."""
    return OpDef(
        op_type,
        (ArgDef("input", ArgOccur.REPEATED, DataType.FLOAT, ""),),
        _custom_attrs(),
        CUSTOM_OP_ANNOTATION,
    )


def is_custom(op_def: OpDef) -> bool:
    return op_def.annotation == CUSTOM_OP_ANNOTATION


def lookup_op_def(op_type: str, extra: Mapping[str, OpDef] | None = None) -> OpDef:
    """The def of `op_type`: from `extra` (e.g. a file's defs) first, then the built-ins,
    else a custom-op def."""
    if extra is not None and op_type in extra:
        return extra[op_type]
    return BUILTIN_OP_DEFS.get(op_type) or custom_op_def(op_type)


def op_defs_by_name(defs: Iterable[OpDef]) -> dict[str, OpDef]:
    out: dict[str, OpDef] = {}
    for d in defs:
        if d.name in out:
            raise ValueError(f"op def {d.name!r} is defined twice")
        out[d.name] = d
    return out
