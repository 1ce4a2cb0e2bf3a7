"""`OpDef`, the entry of one op in the CNN op registry, and the helpers its facets share.

An entry is a small class per op, registered with `@register("<op>", ...)`: class attributes
(given to `register` or inherited from a family base class) declare the op's contract (attrs,
params, arity, the fix plan's and CLE's view of it), methods are its facets (contract checks,
numpy reference semantics, xmodel export and evaluation, ONNX export, Inspector rules).
Consumers never branch on op names: they look the entry up (`nndct_shared.graph.ops.get_op`)
and call the facet. See README.md in this folder.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from ..graph import Graph
from ..node import Node

__all__ = [
    "ANY", "BINARY", "NONE", "UNARY", "VARIADIC",
    "ExportUnsupported", "OpContractError", "OpDef", "axis_of", "int_tuple", "is_int", "register",
]

# Arity: how many input tensors a node of the op reads.
NONE = "none"            # graph input: reads no tensor
UNARY = "unary"          # exactly one tensor
BINARY = "binary"        # two tensors, or one tensor and an `other` param (attr other_index)
VARIADIC = "variadic"    # one or more tensors (concat)
ANY = "any"              # whatever the op's implementation takes (custom)

#: The registered entries by op name (filled by `register`; read through the package's lookups).
REGISTRY: dict[str, "OpDef"] = {}
#: The entry that evaluates each XIR op type of a written xmodel (see `OpDef.xir_types`).
XIR_OWNERS: dict[str, "OpDef"] = {}


class OpContractError(Exception):
    """A node breaks its op's contract (raised by `OpDef.check`; `validate_cnn_graph` turns it
    into the catalogued CNN_GRAPH_INVALID naming the node)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class ExportUnsupported(Exception):
    """This node has no form in an export format (the exporters turn it into the catalogued
    EXPORT_UNSUPPORTED naming the node, the format and this reason)."""


class OpDef:
    """One op of the neutral CNN graph: its contract and its facets (override per op).

    Contract (class attributes):
    - `name`: the op type of `Node.op_type`;
    - `attrs` / `optional_attrs`: attrs a producer must / may set; `params` / `optional_params`:
      param roles a node must / may carry (roles `weight`, `bias`, `other`);
    - `arity`: NONE, UNARY, BINARY, VARIADIC or ANY (input tensors, checked by the validator);
    - `spatial`: for conv and pooling ops the number of spatial dims (input rank is spatial + 2).

    Fix plan and algorithms:
    - `shape_only`: the output is the input reshaped, already on its grid (no own output fix);
    - `fused_activation`: the DPU fuses it into a `fusing_producer` before it, whose output fix
      then sits after the activation;
    - `weight_axis`: output-channel axis of the `weight` param for ops whose weight the
      algorithms adjust (per-channel quantization, BatchNorm folding, bias correction), else None;
    - `cle`: the op's role in cross-layer equalization (`nndct_shared.cnn.cle`): "weighted"
      (either side of an equalized pair), "transparent" (commutes with a positive per-channel
      scale, allowed between the two sides), "clip" (allowed between them, its clip level is
      divided by the scale: ReLU6) or None; with `cle_extension` the role only applies with the
      config key `cle_extensions` on (this project's additions: linear pairs, LeakyReLU);
    - `dpu_activation`: the name of the DPU nonlinear function that computes it, if any.

    Names: `nndct_op` is the reference's nndct op type of the op (`nndct_conv2d`, `nndct_dense`,
    `aten::avg_pool1d`, ...); a node is named `<Model>::<nndct op>_<index>` from it
    (`graph.naming.nndct_node_names`), and `nndct_type(node)` picks a variant by the node's attrs
    (depthwise convolutions, a custom op's own type).

    Quantization: `quantizable` False marks an op with no quantized form (LayerNorm, GELU, ...):
    the session keeps its nodes in float with the FLOAT_OP warning, and quantizes their outputs
    as inputs where quantized nodes read them (`nndct_shared.cnn.float_ops`).

    Exports: `folds_input_reorder`: the op's weight columns can absorb a permutation of its input
    features, so a flatten of channels-first maps before it is written as a plain reshape of the
    channels-last map (`cnn_export.flatten_fold`; linear). `xir_types` are the XIR op types whose evaluation (`eval_xir`) this entry owns
    (each type has one owner; const, fix, transpose and data are the xmodel's plumbing).
    `graph_rule_late`: its Inspector graph rule runs after every other op's (graph inputs).
    """

    name: ClassVar[str] = ""
    attrs: ClassVar[tuple[str, ...]] = ()
    optional_attrs: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[tuple[str, ...]] = ()
    optional_params: ClassVar[tuple[str, ...]] = ()
    arity: ClassVar[str] = UNARY
    spatial: ClassVar[int | None] = None
    shape_only: ClassVar[bool] = False
    fused_activation: ClassVar[bool] = False
    fusing_producer: ClassVar[bool] = False
    weight_axis: ClassVar[int | None] = None
    nndct_op: ClassVar[str] = ""
    folds_input_reorder: ClassVar[bool] = False
    cle: ClassVar[str | None] = None
    cle_extension: ClassVar[bool] = False
    dpu_activation: ClassVar[str | None] = None
    xir_types: ClassVar[tuple[str, ...]] = ()
    graph_rule_late: ClassVar[bool] = False
    quantizable: ClassVar[bool] = True

    #: The facets every entry must define itself (the registry test checks it).
    REQUIRED_FACETS: ClassVar[tuple[str, ...]] = ("reference", "to_xmodel", "to_onnx", "dpu_rule")

    def __repr__(self) -> str:
        return f"<op {self.name}>"

    # --- names ------------------------------------------------------------------------------------

    def nndct_type(self, node: Node) -> str:
        """The reference's nndct op type of this node (its name is built from it); the entry's
        `nndct_op` unless a variant depends on the node (override)."""
        if not self.nndct_op:
            raise NotImplementedError(f"op {self.name!r} declares no nndct_op")
        return self.nndct_op

    # --- contract -------------------------------------------------------------------------------

    def check(self, graph: Graph, node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        """Op-specific contract checks (attr values, param shapes); OpContractError otherwise.
        Attr presence, param roles, arity and the spatial rank are checked generically."""

    # --- numpy reference semantics ----------------------------------------------------------------

    def reference(self, node: Node, xs: list[np.ndarray], out_shape: tuple[int, ...] | None,
                  custom: Mapping[str, Any]) -> np.ndarray:
        """The float result of the op (torch layout) on its already input-fixed inputs, before
        the output fix; params are already quantized. `out_shape`: the output shape for the
        actual batch. `custom`: custom op implementations by name."""
        raise NotImplementedError(f"op {self.name!r} has no reference semantics")

    # --- xmodel -----------------------------------------------------------------------------------

    def to_xmodel(self, b: Any, node: Node, xs: list[str]) -> str:
        """Emit the node's XIR ops with the xmodel builder `b` (`cnn_export.xmodel`), reading XIR
        ops `xs`; returns the op holding the output (its fix is added by the builder)."""
        raise NotImplementedError(f"op {self.name!r} has no xmodel form")

    def eval_xir(self, op: Any, xs: list[np.ndarray], args: Mapping[str, list[np.ndarray]],
                 custom: Mapping[str, Any]) -> np.ndarray:
        """Evaluate XIR op `op` (one of `xir_types`) on its `input` values `xs` and all its
        arguments `args`, in XIR layout (`cnn_export.xmodel_eval`)."""
        raise NotImplementedError(f"op {self.name!r} evaluates no XIR op")

    # --- ONNX -------------------------------------------------------------------------------------

    def to_onnx(self, b: Any, node: Node, xs: list[str]) -> str:
        """Emit the node's ONNX nodes with the ONNX builder `b` (`cnn_export.onnx_qdq`) reading
        values `xs`; returns the output value (its QDQ is added by the builder)."""
        raise NotImplementedError(f"op {self.name!r} has no ONNX form")

    # --- Inspector ---------------------------------------------------------------------------------

    def dpu_refusal(self, node: Node) -> str:
        """Why this node can never reach the DPU compiler, checked before anything else ("")."""
        return ""

    def dpu_rule(self, graph: Graph, node: Node, target: Any) -> str:
        """Why the DPU `target` cannot run this node ("" when it can), from the node alone."""
        raise NotImplementedError(f"op {self.name!r} has no Inspector rule")

    def dpu_graph_rule(self, graph: Graph, node: Node, target: Any, device: Mapping[str, str]) -> str:
        """Why a node the DPU can run must still go to the CPU given its neighbours' devices
        (`device`: node name -> "DPU"/"CPU" so far); "" to stay."""
        return ""

    def dpu_engine(self, graph: Graph, node: Node, target: Any, device: Mapping[str, str]) -> str:
        """Which DPU engine runs a node assigned to the DPU (the Inspector's reason)."""
        return "Supported by the DPU."


def register(name: str, **declared: Any) -> Callable[[type[OpDef]], type[OpDef]]:
    """Class decorator: declare the op `name` (with any other `OpDef` class attributes as
    keywords, e.g. `xir_types=(...)`, `cle="transparent"`) and add an instance of the class to
    the registry."""
    def decorate(cls: type[OpDef]) -> type[OpDef]:
        for key, value in declared.items():
            if key.startswith("_") or not hasattr(OpDef, key) or callable(getattr(OpDef, key)):
                raise TypeError(f"{cls.__name__}: {key!r} is not a declared attribute of OpDef")
            setattr(cls, key, value)
        cls.name = name
        entry = cls()
        if name in REGISTRY:
            raise ValueError(f"op {name!r} is registered twice ({type(REGISTRY[name]).__name__}, "
                             f"{cls.__name__})")
        for xir_type in entry.xir_types:
            if xir_type in XIR_OWNERS:
                raise ValueError(f"XIR op type {xir_type!r} is evaluated by both "
                                 f"{XIR_OWNERS[xir_type]!r} and {entry!r}")
        XIR_OWNERS.update(dict.fromkeys(entry.xir_types, entry))
        REGISTRY[name] = entry
        return cls

    return decorate


# --- checks the entries share --------------------------------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def int_tuple(node: Node, attr: str, length: int, minimum: int) -> tuple[int, ...]:
    """attr `attr` as a `length`-tuple of ints >= `minimum` (OpContractError otherwise)."""
    value = node.attrs[attr]
    if (not isinstance(value, (tuple, list)) or len(value) != length
            or not all(is_int(v) and v >= minimum for v in value)):
        raise OpContractError(f"attr {attr!r} must be a {length}-tuple of ints >= {minimum} (torch "
                              f"order), got {value!r}")
    return tuple(int(v) for v in value)


def axis_of(node: Node, attr: str, value: Any, rank: int) -> int:
    """`value` of attr `attr` as a non-negative axis of a rank-`rank` tensor."""
    if not is_int(value) or not -rank <= int(value) < rank:
        raise OpContractError(f"attr {attr!r} = {value!r} is not an axis of a rank-{rank} tensor")
    return int(value) % rank


def param_array(node: Node, role: str) -> np.ndarray | None:
    """The float32 data of param `role` (None when the node has no such param)."""
    tensor = node.params.get(role)
    return None if tensor is None else np.asarray(tensor.data, dtype=np.float32)
