"""In-memory XIR graph: ops with typed attributes, named input args and an output tensor.

This is the model that `write_xmodel` serializes and `read_xmodel` returns. It holds exactly
what an `.xmodel` can say (so a file read and written again is byte-identical), and offers
builder helpers for the ops a quantizer writes:

    g = XGraph("Cell")
    g.add_data("x", [1, 16])
    g.add_fix("x", bit_width=16, fix_point=12)                 # appends op "x_fix"
    g.add_const("w", weights)                                   # float32 data
    g.add_fix("w", 16, 12)
    g.add_op("y", "matmul", inputs={"input": ["x_fix", "w_fix"]},
             attrs={"transpose_a": False, "transpose_b": True}, shape=[1, 32])
    g.set_return_ops(["y"])

Attribute values are plain Python values; their XIR kind (the AttrValue oneof member) comes
from the op def, so `fix_point=12` is written as int32 and `kernel=[3, 3]` as int32_vec. Attrs
outside the def are typed by `attr_value.infer_kind` or by an explicit `TypedAttr`.
"""
from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import attr_value
from .attr_value import TypedAttr
from .op_defs import BUILTIN_OP_DEFS, DataType, OpDef, custom_op_def, is_custom

#: Op types whose output has the shape of their (first) input, used when `shape` is omitted.
SHAPE_PRESERVING_OPS = frozenset(
    {"fix", "float2fix", "fix2float", "relu", "relu6", "leaky-relu", "prelu", "sigmoid", "tanh",
     "hard-sigmoid", "hard-swish", "hard-tanh", "swish", "gelu", "selu", "elu", "celu", "exp",
     "neg", "softmax", "identity"}
)
#: Op types whose `shape` attr is their output shape.
SOURCE_OPS = frozenset({"data", "const", "data-fix", "const-fix"})
FIX_ATTR_NAMES = ("fix_point", "bit_width", "round_mode", "if_signed")


class XGraphError(ValueError):
    """An XGraph that XIR would reject (unknown producer, bad arg count, missing attr...)."""


class TypedAttrs(dict):
    """An attribute dict that remembers each value's XIR kind.

    Values read back are plain Python values; `kind(name)` gives the kind they are written
    with. Assigning a plain value keeps the kind the attr already had (or lets the owner infer
    one); assigning a `TypedAttr` sets both.
    """

    def __init__(self, kind_of: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self._kinds: dict[str, str] = {}
        self._kind_of = kind_of  # name -> kind from the owner's op def (None: no def)

    def __setitem__(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise XGraphError(f"attribute names must be non-empty str, got {name!r}")
        if isinstance(value, TypedAttr):
            kind, plain = value.kind, value.value
        else:
            kind = self._kinds.get(name) or (self._kind_of(name) if self._kind_of else None)
            kind = kind or attr_value.infer_kind(value)
            try:
                plain = attr_value.normalize(kind, value)
            except (TypeError, ValueError) as exc:
                raise XGraphError(f"attribute {name!r}: {exc}") from None
        self._kinds[name] = kind
        super().__setitem__(name, plain)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._kinds.pop(name, None)

    def pop(self, name: str, *default: Any) -> Any:  # type: ignore[override]
        self._kinds.pop(name, None)
        return super().pop(name, *default)

    def update(self, other: Any = (), **kwargs: Any) -> None:  # type: ignore[override]
        items = other.items() if isinstance(other, Mapping) else other
        for name, value in items:
            self[name] = value
        for name, value in kwargs.items():
            self[name] = value

    def setdefault(self, name: str, value: Any = None) -> Any:  # type: ignore[override]
        if name not in self:
            self[name] = value
        return self[name]

    def clear(self) -> None:
        super().clear()
        self._kinds.clear()

    def kind(self, name: str) -> str:
        return self._kinds[name]

    def typed_items(self) -> Iterator[tuple[str, str, Any]]:
        """(name, kind, value) in insertion order."""
        for name, value in self.items():
            yield name, self._kinds[name], value


@dataclass
class XTensor:
    """An op's output tensor. Quantizer-written files always use FLOAT / 32 bits."""

    name: str
    shape: list[int]
    data_type: int = DataType.FLOAT
    bit_width: int = 32
    attrs: TypedAttrs = field(default_factory=TypedAttrs)

    def __post_init__(self) -> None:
        self.shape = _check_shape(self.shape, f"tensor {self.name!r}")


class XOp:
    """One XIR op. `inputs` maps each input arg name to its producer op names (arg order is
    the op def's order; args with no producers may be left out, the writer adds them)."""

    def __init__(self, name: str, op_type: str, op_def: OpDef, output: XTensor) -> None:
        self.name = name
        self.type = op_type
        self.op_def = op_def
        self.inputs: dict[str, list[str]] = {}
        self.attrs = TypedAttrs(self._def_kind)
        self.output = output

    def _def_kind(self, name: str) -> str | None:
        attr = self.op_def.attr(name)
        return attr.kind if attr is not None else None

    @property
    def args(self) -> dict[str, list[str]]:
        """The same dict as `inputs`, under XIR's name for it (OpArg)."""
        return self.inputs

    @property
    def shape(self) -> list[int]:
        return self.output.shape

    @property
    def input_ops(self) -> list[str]:
        """All producer names, in arg order."""
        return [p for producers in self.inputs.values() for p in producers]

    @property
    def fix(self) -> tuple[int, int] | None:
        """(bit_width, fix_point) of a fix-like op, else None."""
        if "bit_width" in self.attrs and "fix_point" in self.attrs:
            return int(self.attrs["bit_width"]), int(self.attrs["fix_point"])
        return None

    def const_array(self) -> np.ndarray:
        """The data of a `const` op as a numpy array of its `shape` and `data_type`."""
        if "data" not in self.attrs:
            raise XGraphError(f"op {self.name!r} ({self.type}) has no 'data' attribute")
        dtype = numpy_dtype(str(self.attrs.get("data_type", "float32")))
        shape = [int(d) for d in self.attrs.get("shape", self.shape)]
        data = self.attrs["data"]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(data) != expected:
            raise XGraphError(
                f"const op {self.name!r}: {len(data)} data bytes do not match shape {shape} of "
                f"{dtype.name} ({expected} bytes)"
            )
        return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)

    def __repr__(self) -> str:
        return f"XOp({self.name!r}, {self.type!r}, inputs={self.inputs}, shape={self.shape})"


@dataclass
class XSubgraph:
    """A node of the subgraph tree. Quantizer files have one leaf `root` listing all ops;
    compiled files have a tree with attrs. Kept as read so that round trips are exact."""

    name: str
    ops: list[str] = field(default_factory=list)
    attrs: TypedAttrs = field(default_factory=TypedAttrs)
    children: list[XSubgraph] = field(default_factory=list)

    def leaf_ops(self) -> list[str]:
        if not self.children:
            return list(self.ops)
        return [op for child in self.children for op in child.leaf_ops()]


_NUMPY_DTYPES = {"FLOAT": "float", "INT": "int", "UINT": "uint", "BFLOAT": None}


def numpy_dtype(xir_data_type: str) -> np.dtype:
    """numpy dtype of an XIR data_type string such as `float32`, `FLOAT32`, `INT8`.

    XIR parses these with the regex `([A-Za-z]+)([0-9]+)`, in either case."""
    match = re.fullmatch(r"([A-Za-z]+)([0-9]+)", xir_data_type)
    base = _NUMPY_DTYPES.get(match.group(1).upper()) if match else None
    if base is None:
        raise XGraphError(
            f"cannot map XIR data_type {xir_data_type!r} to numpy; expected e.g. FLOAT32, INT8"
        )
    try:
        return np.dtype(f"{base}{match.group(2)}")
    except TypeError:
        raise XGraphError(f"no numpy dtype for XIR data_type {xir_data_type!r}") from None


def _check_shape(shape: Any, what: str) -> list[int]:
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError):
        raise XGraphError(f"{what}: shape must be a list of ints, got {shape!r}") from None
    if any(d < 0 or d >= 2**32 for d in dims) or any(
        isinstance(d, (bool, np.bool_)) for d in shape
    ):
        raise XGraphError(f"{what}: shape dims must be ints in [0, 2^32), got {shape!r}")
    return dims


class XGraph:
    """An XIR graph: a name, ops in insertion order, graph attrs and op defs.

    `op_defs` holds the defs the file will embed: a new graph collects the built-in def of
    each op type on first use; a graph read from a file keeps the file's defs (all of them,
    in file order) and adds defs only for op types that the file did not define.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise XGraphError(f"graph name must be a non-empty str, got {name!r}")
        self.name = name
        self.attrs = TypedAttrs()
        self.op_defs: dict[str, OpDef] = {}
        self.subgraph: XSubgraph | None = None
        self._ops: dict[str, XOp] = {}

    # --- container protocol ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[XOp]:
        return iter(list(self._ops.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    @property
    def ops(self) -> list[XOp]:
        return list(self._ops.values())

    def op(self, name: str) -> XOp:
        try:
            return self._ops[name]
        except KeyError:
            raise KeyError(f"graph {self.name!r} has no op {name!r}") from None

    def ops_of_type(self, op_type: str) -> list[XOp]:
        return [op for op in self._ops.values() if op.type == op_type]

    def consumers(self, name: str) -> list[XOp]:
        return [op for op in self._ops.values() if name in op.input_ops]

    def op_type_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self._ops.values():
            counts[op.type] = counts.get(op.type, 0) + 1
        return counts

    # --- op defs -----------------------------------------------------------------------

    def op_def(self, op_type: str) -> OpDef:
        """The def used for `op_type`: the graph's own, else the built-in, else a custom-op
        def. It is registered in `op_defs` when an op of that type is added."""
        return (self.op_defs.get(op_type) or BUILTIN_OP_DEFS.get(op_type)
                or custom_op_def(op_type))

    # --- building ------------------------------------------------------------------------

    def add_op(
        self,
        name: str,
        op_type: str,
        inputs: Mapping[str, Sequence[str] | str] | None = None,
        attrs: Mapping[str, Any] | None = None,
        shape: Sequence[int] | None = None,
        *,
        tensor_attrs: Mapping[str, Any] | None = None,
        data_type: int = DataType.FLOAT,
        bit_width: int = 32,
    ) -> XOp:
        """Append an op. Producers named in `inputs` may be added later (the writer orders
        ops topologically), but every one must exist when the graph is written.

        `shape` may be omitted for ops with a `shape` attr (data, const, custom ops) and for
        shape-preserving ops whose first producer already exists (fix, sigmoid, ...).
        Attrs are stored in op-def order, then any extra attrs in the given order.
        """
        if not isinstance(name, str) or not name:
            raise XGraphError(f"op name must be a non-empty str, got {name!r}")
        if name in self._ops:
            raise XGraphError(f"graph {self.name!r} already has an op named {name!r}")
        if not isinstance(op_type, str) or not op_type:
            raise XGraphError(f"op {name!r}: op type must be a non-empty str, got {op_type!r}")
        op_def = self.op_def(op_type)
        attrs = dict(attrs or {})
        inputs = {arg: ([p] if isinstance(p, str) else list(p))
                  for arg, p in (inputs or {}).items()}

        if shape is None:
            shape = self._infer_shape(name, op_type, inputs, attrs)
        if is_custom(op_def):
            attrs.setdefault("shape", list(shape))
            attrs.setdefault("data_type", "FLOAT32")

        op = XOp(name, op_type, op_def, XTensor(name, _check_shape(shape, f"op {name!r}"),
                                                data_type, bit_width))
        for arg_name in inputs:
            if op_def.arg(arg_name) is None:
                raise XGraphError(
                    f"op {name!r} ({op_type}) has no input arg {arg_name!r}; "
                    f"its args are {list(op_def.arg_names)}"
                )
        for arg in op_def.args:
            if arg.name in inputs:
                op.inputs[arg.name] = [str(p) for p in inputs[arg.name]]
        ordered = [a for a in op_def.attr_names if a in attrs]
        ordered += [a for a in attrs if op_def.attr(a) is None]
        try:
            for attr_name in ordered:
                op.attrs[attr_name] = attrs[attr_name]
            for attr_name, value in (tensor_attrs or {}).items():
                op.output.attrs[attr_name] = value
        except XGraphError as exc:
            raise XGraphError(f"op {name!r} ({op_type}): {exc}") from None
        problems = check_op(op)
        if problems:
            raise XGraphError(f"op {name!r} ({op_type}): " + "; ".join(problems))
        self.op_defs.setdefault(op_type, op_def)
        self._ops[name] = op
        return op

    def _infer_shape(
        self, name: str, op_type: str, inputs: Mapping[str, list[str]], attrs: Mapping[str, Any]
    ) -> list[int]:
        if "shape" in attrs and (op_type in SOURCE_OPS or is_custom(self.op_def(op_type))):
            value = attrs["shape"]
            return list(value.value if isinstance(value, TypedAttr) else value)
        producers = [p for ps in inputs.values() for p in ps]
        if op_type in SHAPE_PRESERVING_OPS and producers and producers[0] in self._ops:
            return list(self._ops[producers[0]].shape)
        raise XGraphError(
            f"op {name!r} ({op_type}): pass shape=[...] (the output tensor shape); it can only "
            "be derived for ops with a 'shape' attr or shape-preserving ops of an existing input"
        )

    def add_data(self, name: str, shape: Sequence[int], data_type: str = "FLOAT32") -> XOp:
        """A graph input (`data` op); the quantizer writes data_type "FLOAT32"."""
        return self.add_op(name, "data", attrs={"shape": list(shape), "data_type": data_type})

    def add_const(self, name: str, array: Any, dtype: Any = np.float32) -> XOp:
        """A `const` op holding `array` cast to `dtype` (float32 by default), stored as raw
        little-endian row-major bytes with data_type = the numpy dtype name (`float32`)."""
        data = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        return self.add_op(
            name,
            "const",
            attrs={
                "shape": list(data.shape),
                "data_type": data.dtype.name,
                "data": attr_value.array_to_le_bytes(data),
            },
        )

    def add_fix(
        self,
        op_name: str,
        bit_width: int,
        fix_point: int,
        *,
        round_mode: str = "DPU_ROUND",
        if_signed: bool = True,
        name: str | None = None,
    ) -> XOp:
        """Append the fix op `<op_name>_fix` quantizing the output of `op_name` (which must
        exist): attrs bit_width/fix_point (int32), round_mode, if_signed, as the quantizer
        writes them."""
        if op_name not in self._ops:
            raise XGraphError(f"add_fix: graph {self.name!r} has no op {op_name!r} to quantize")
        return self.add_op(
            name or f"{op_name}_fix",
            "fix",
            inputs={"input": [op_name]},
            attrs={"fix_point": fix_point, "bit_width": bit_width, "round_mode": round_mode,
                   "if_signed": if_signed},
            shape=self._ops[op_name].shape,
        )

    def set_return_ops(self, names: Iterable[str]) -> None:
        """Graph attr `return_ops` (string_vec): the graph's output ops."""
        self.attrs["return_ops"] = TypedAttr("string_vec", list(names))

    @property
    def return_ops(self) -> list[str]:
        return list(self.attrs.get("return_ops", []))

    # --- structure ------------------------------------------------------------------------

    def topological_order(self) -> list[XOp]:
        """Ops ordered so that producers come first; among ready ops the earliest inserted
        goes first, so an order that is already topological (e.g. a file's) is kept."""
        index = {name: i for i, name in enumerate(self._ops)}
        pending: dict[str, int] = {}
        users: dict[str, list[str]] = {name: [] for name in self._ops}
        for op in self._ops.values():
            producers = set(op.input_ops)
            missing = [p for p in producers if p not in self._ops]
            if missing:
                raise XGraphError(
                    f"op {op.name!r} ({op.type}) reads {missing}, which are not ops of graph "
                    f"{self.name!r}"
                )
            pending[op.name] = len(producers)
            for producer in producers:
                users[producer].append(op.name)
        ready = [index[name] for name, count in pending.items() if count == 0]
        heapq.heapify(ready)
        names = list(self._ops)
        order: list[XOp] = []
        while ready:
            name = names[heapq.heappop(ready)]
            order.append(self._ops[name])
            for user in users[name]:
                pending[user] -= 1
                if pending[user] == 0:
                    heapq.heappush(ready, index[user])
        if len(order) != len(self._ops):
            stuck = sorted((n for n, c in pending.items() if c > 0), key=index.__getitem__)
            raise XGraphError(f"graph {self.name!r} has a cycle among ops {stuck}")
        return order

    def validate(self) -> None:
        """Raise XGraphError if XIR would reject the graph: unknown producers, a cycle, bad
        arg counts, missing required attrs, or return_ops naming no op."""
        self.topological_order()
        for op in self._ops.values():
            problems = check_op(op)
            if problems:
                raise XGraphError(f"op {op.name!r} ({op.type}): " + "; ".join(problems))
        for ret in self.return_ops:
            if ret not in self._ops:
                raise XGraphError(f"graph attr return_ops names {ret!r}, which is not an op")

    def __repr__(self) -> str:
        counts = ", ".join(f"{t}: {n}" for t, n in self.op_type_counts().items())
        return f"XGraph({self.name!r}, {len(self)} ops; {counts})"


def check_op(op: XOp) -> list[str]:
    """What is wrong with `op` against its def (arg counts, required attrs, attr kinds)."""
    problems: list[str] = []
    for arg in op.op_def.args:
        problem = arg.check_count(len(op.inputs.get(arg.name, [])))
        if problem:
            problems.append(problem)
    for name in op.inputs:
        if op.op_def.arg(name) is None:
            problems.append(f"input arg {name!r} is not in the op def")
    for attr in op.op_def.attrs:
        if attr.name not in op.attrs:
            if attr.occur == 0:
                problems.append(f"required attr {attr.name!r} is missing")
        elif op.attrs.kind(attr.name) != attr.kind:
            problems.append(
                f"attr {attr.name!r} has kind {op.attrs.kind(attr.name)!r}, the op def says "
                f"{attr.kind!r}"
            )
    return problems
