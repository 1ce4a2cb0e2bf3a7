"""The op vocabulary of the neutral graph in the CNN flow: the contract between front ends
(PyTorch today, Keras later) and the neutral back ends (xmodel, ONNX, deploy-check dumps,
the Inspector).

Why a fixed vocabulary: every exporter and the Inspector read the same `Graph`, so the front
end must lower its framework ops to these names and attrs and nothing else.

Conventions every producer of a CNN `Graph` follows
---------------------------------------------------
- Layout is PyTorch's channels-first layout: activations `(N, C)`, `(N, C, L)`,
  `(N, C, H, W)`; weights as `torch.nn` stores them: linear `[out, in]`, conv1d
  `[O, I/groups, K]`, conv2d `[O, I/groups, kh, kw]`, conv_transpose2d `[I, O/groups, kh,
  kw]`. Exporters that need NHWC (xmodel, bin dumps) convert.
- Every node's output tensor metadata (shape with batch dim, dtype) is recorded with
  `Graph.set_tensor` (or `Graph.add(..., shape=...)`).
- Params (`node.params[role]`, roles `weight` / `bias` / `other`) hold **already quantized**
  float32 values (on the grid `k * 2**-fix_point`) when the param is quantized, and carry
  `tensor.attrs["fix"] = (bit_width, fix_point)`; a float param has no `fix` attr.
- A quantized output carries `node.attrs["fix"] = (bit_width, fix_point)`; a node without it
  runs in float (outside a QuantStub/DeQuantStub region, or a float fallback).
- A quantized input of a node (the reference's "input" quant entries, e.g. on the model
  input) is `node.attrs["input_fix"] = {input_index: (bit_width, fix_point)}`.
- BatchNorm that follows a conv/linear is folded by the front end; a standalone BatchNorm
  becomes `scale` (per-channel `weight` and `bias` params on axis 1).
- A non-tensor operand of a binary op (`x * 0.5`) becomes a param with role `other`; its
  position is `attrs["other_index"]` (0 or 1).
- Optional attr `dpu_scale` (float) on avg_pool*/adaptive_avg_pool*/mean: the factor the
  quantized model multiplies the pooled value by before the output fix (the reference's DPU
  approximation, `nndct_shared.cnn_export.dpu_avgpool_scale(kernel)`); absent = 1.0. The
  xmodel writes it as the `<name>_i1` const of the avgpool's `mul`.
- Integer attrs that are per-spatial-dim are tuples in torch order: `(kh, kw)`, `(sh, sw)`,
  `(ph, pw)` (symmetric torch padding), `(dh, dw)`; 1-D ops use 1-tuples.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CnnOp", "CNN_OPS", "op_spec"]


@dataclass(frozen=True)
class CnnOp:
    """One op type: its name, the attrs a producer must set, the param roles it may carry."""

    name: str
    attrs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    optional_params: tuple[str, ...] = ()


_CONV_ATTRS = ("kernel", "stride", "padding", "dilation", "groups")
_POOL_ATTRS = ("kernel", "stride", "padding", "ceil_mode")

CNN_OPS: dict[str, CnnOp] = {op.name: op for op in (
    CnnOp("input"),                       # graph input; its tensor has the input shape
    CnnOp("linear", params=("weight",), optional_params=("bias",)),
    CnnOp("conv1d", _CONV_ATTRS, ("weight",), ("bias",)),
    CnnOp("conv2d", _CONV_ATTRS, ("weight",), ("bias",)),          # groups == C_in: depthwise
    CnnOp("conv_transpose2d", _CONV_ATTRS + ("output_padding",), ("weight",), ("bias",)),
    CnnOp("scale", ("axis",), ("weight", "bias")),                 # standalone BatchNorm
    CnnOp("relu"),
    CnnOp("relu6"),
    CnnOp("leaky_relu", ("alpha",)),
    CnnOp("sigmoid"),
    CnnOp("tanh"),
    CnnOp("hardswish"),
    CnnOp("max_pool1d", _POOL_ATTRS),
    CnnOp("max_pool2d", _POOL_ATTRS),
    CnnOp("avg_pool1d", _POOL_ATTRS + ("count_include_pad",)),
    CnnOp("avg_pool2d", _POOL_ATTRS + ("count_include_pad",)),
    CnnOp("adaptive_avg_pool1d", ("output_size",)),
    CnnOp("adaptive_avg_pool2d", ("output_size",)),
    CnnOp("adaptive_max_pool1d", ("output_size",)),   # return_indices=False only
    CnnOp("adaptive_max_pool2d", ("output_size",)),
    CnnOp("add", ("other_index",), optional_params=("other",)),   # other_index only with `other`
    CnnOp("sub", ("other_index",), optional_params=("other",)),
    CnnOp("mul", ("other_index",), optional_params=("other",)),
    CnnOp("concat", ("axis",)),
    CnnOp("flatten", ("start_dim", "end_dim")),
    CnnOp("reshape", ("shape",)),         # full target shape incl. batch; -1 allowed
    CnnOp("mean", ("dims", "keepdim")),
    CnnOp("softmax", ("dim",)),
    CnnOp("custom", ("op_name",)),        # register_custom_op; other attrs are the op's own
)}

_OPTIONAL_ATTRS = {"add": ("other_index",), "sub": ("other_index",), "mul": ("other_index",)}


def op_spec(op_type: str) -> CnnOp:
    """The spec of `op_type`; KeyError naming the known types otherwise."""
    try:
        return CNN_OPS[op_type]
    except KeyError:
        raise KeyError(f"{op_type!r} is not a CNN op of the neutral graph; known: "
                       f"{', '.join(sorted(CNN_OPS))}") from None


def required_attrs(op_type: str) -> tuple[str, ...]:
    """Attrs a producer must set on a node of this type."""
    optional = _OPTIONAL_ATTRS.get(op_type, ())
    return tuple(a for a in op_spec(op_type).attrs if a not in optional)
