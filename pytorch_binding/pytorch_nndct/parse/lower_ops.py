"""Capture rules of the ops added for users' real models: resampling (Upsample / interpolate),
data movement (permute, transpose, unsqueeze, chunk, split, pad), clamp / Hardtanh, matmul /
bmm, PReLU, Hardsigmoid, and the ops that run in float (ELU, GELU, SiLU, LayerNorm, GroupNorm,
InstanceNorm, sum, max). Each maps the torch forms of one op (module, function, Tensor method)
onto its registry entry's contract (`nndct_shared.graph.ops`).

`OpRules` is a mixin of the fx lowering (`lower._Lowering`), which calls `_extra_module`,
`_extra_function` and `_extra_method` for what its own tables do not know. Ops with several
outputs (chunk, split, torch.max with dim) record their pieces (`_Pieces`) and become one node
per piece the model reads (`getitem` / `.values`). An InstanceNorm that uses running statistics
(eval mode, track_running_stats) is BatchNorm and is folded like it.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import padding as padding_modules

from nndct_shared.graph import Tensor

__all__ = ["OpRules"]

_RESAMPLE_FUNCS = {F.interpolate: None, F.upsample: None, F.upsample_nearest: "nearest",
                   F.upsample_bilinear: "bilinear"}
_FLOAT_ACT_MODULES = {nn.ELU: "elu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Hardsigmoid: "hardsigmoid"}


@dataclass
class _Pieces:
    """The several outputs of chunk / split (`bounds` along `dim`) or torch.max with a dim
    (`op` "max"); a piece becomes a node when the model reads it, named after the call
    with the piece's index (`.../chunk_1`), whatever syntax reads it."""

    source: Any           # the input's _Value
    node: torch.fx.Node   # the call that returned the pieces (pieces are named after it)
    op: str
    dim: int
    bounds: list[tuple[int, int]]
    keepdim: bool = False


def _bind(fx_node: torch.fx.Node, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name (`names` in signature order, the input first), for the
    function and the Tensor-method form alike."""
    out = dict(defaults)
    out.update(zip(names, fx_node.args))
    out.update(fx_node.kwargs)
    return out


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _ints(value: Any) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and isinstance(value[0], (list, tuple)):
            value = value[0]
        return tuple(int(v) for v in value)
    return (int(value),)


class OpRules:
    """Capture rules of the added ops (a mixin of `lower._Lowering`)."""

    # --- dispatch ---------------------------------------------------------------------------

    def _extra_module(self, fx_node: torch.fx.Node, module: nn.Module, x: Any, path: str, kw: dict) -> bool:
        """Lower a call of `module` (an nn layer the base tables do not know); False if unknown."""
        if isinstance(module, nn.Upsample):
            self._resize(fx_node, x, module.size, module.scale_factor, module.mode, module.align_corners,
                         module.recompute_scale_factor, False, kw)
        elif isinstance(module, (padding_modules._ConstantPadNd, padding_modules._ReflectionPadNd,
                                 padding_modules._ReplicationPadNd)):
            mode = ("constant" if isinstance(module, padding_modules._ConstantPadNd) else
                    "reflect" if isinstance(module, padding_modules._ReflectionPadNd) else "replicate")
            self._pad(fx_node, x, module.padding, mode, getattr(module, "value", 0.0), kw)
        elif isinstance(module, nn.Hardtanh):
            self._clamp(fx_node, x, module.min_val, module.max_val, kw)
        elif isinstance(module, nn.PReLU):
            self._add(fx_node, "prelu", [x], params={"weight": self._module_param(module, path, "weight")}, **kw)
        elif type(module) in _FLOAT_ACT_MODULES:
            self._float_activation(fx_node, _FLOAT_ACT_MODULES[type(module)], x, module, kw)
        elif isinstance(module, nn.LayerNorm):
            self._add(fx_node, "layer_norm", [x], attrs={"normalized_shape": tuple(module.normalized_shape),
                                                         "eps": float(module.eps)},
                      params=self._affine_params(module, path), **kw)
        elif isinstance(module, nn.GroupNorm):
            self._add(fx_node, "group_norm", [x], attrs={"num_groups": int(module.num_groups),
                                                         "eps": float(module.eps)},
                      params=self._affine_params(module, path), **kw)
        elif isinstance(module, (nn.InstanceNorm1d, nn.InstanceNorm2d)):
            if module.track_running_stats and module.running_mean is not None and not module.training:
                self._batchnorm(fx_node, module, x, path, kw)   # running statistics: a BatchNorm
            else:
                self._add(fx_node, "instance_norm", [x], attrs={"eps": float(module.eps)},
                          params=self._affine_params(module, path), **kw)
        else:
            return False
        return True

    def _extra_function(self, fx_node: torch.fx.Node) -> bool:
        """Lower a call_function node the base tables do not know; False if unknown."""
        target = fx_node.target
        if target in (operator.getitem, getattr) and self._read_piece(fx_node):
            return True
        if target in _RESAMPLE_FUNCS:
            mode = _RESAMPLE_FUNCS[target]
            a = _bind(fx_node, ("input", "size", "scale_factor", "mode", "align_corners",
                                "recompute_scale_factor", "antialias"),
                      {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
                       "recompute_scale_factor": None, "antialias": False})
            align = a["align_corners"]
            if mode is not None:          # upsample_nearest / upsample_bilinear
                a["mode"], align = mode, mode == "bilinear"
            self._resize(fx_node, self._tensor(fx_node, a["input"]), self._const(a["size"]),
                         self._const(a["scale_factor"]), self._const(a["mode"]), self._const(align),
                         self._const(a["recompute_scale_factor"]), self._const(a["antialias"]), {})
            return True
        return self._function_or_method(fx_node, _FUNCTION_NAMES.get(target))

    def _extra_method(self, fx_node: torch.fx.Node) -> bool:
        """Lower a Tensor-method call the base tables do not know; False if unknown."""
        return self._function_or_method(fx_node, _METHOD_NAMES.get(str(fx_node.target)))

    def _function_or_method(self, fx_node: torch.fx.Node, kind: str | None) -> bool:
        if kind is None:
            return False
        getattr(self, f"_rule_{kind}")(fx_node)
        return True

    # --- shared by the rules -----------------------------------------------------------------

    def _rank(self, value: Any) -> int:
        return len(self.graph.tensor(value.tensor).shape)

    def _module_param(self, module: nn.Module, path: str, role: str) -> Tensor:
        return Tensor(self._param_name(path, role), data=_np(getattr(module, role)))

    def _affine_params(self, module: nn.Module, path: str) -> dict[str, Tensor]:
        return {role: self._module_param(module, path, role) for role in ("weight", "bias")
                if getattr(module, role, None) is not None}

    def _arg_param(self, fx_node: torch.fx.Node, arg: Any, role: str) -> Tensor | None:
        """A parameter passed to a functional op: a module attribute (named by its path) or a
        constant tensor; None for None."""
        value = self._const(arg)
        if value is None:
            return None
        if not isinstance(value, torch.Tensor):
            raise self._fail(fx_node, _label(fx_node), f"its {role} is not a parameter tensor")
        if isinstance(arg, torch.fx.Node) and arg.op == "get_attr":
            return Tensor(f"{self.name}::{arg.target}", data=_np(value))
        return Tensor(f"{self._node_name(fx_node)}.{role}", data=_np(value))

    def _dims(self, fx_node: torch.fx.Node, x: Any, dim: Any) -> tuple[int, ...] | None:
        """Reduced axes as non-negative ints (None: every axis)."""
        dim = self._const(dim)
        if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
            return None
        rank = self._rank(x)
        return tuple(self._ndim_axis(int(d), rank) for d in _ints(dim))

    # --- resize ---------------------------------------------------------------------------------

    def _resize(self, fx_node, x, size, scale_factor, mode, align_corners, recompute, antialias, kw) -> None:
        if self._rank(x) != 4:
            raise self._fail(fx_node, _label(fx_node, "interpolate"), "only 2-D resizing (a 4-D input) is "
                             "supported")
        if mode not in ("nearest", "bilinear"):
            raise self._fail(fx_node, _label(fx_node, "interpolate"), f"mode '{mode}' (nearest and bilinear "
                             "are supported)")
        if antialias:
            raise self._fail(fx_node, _label(fx_node, "interpolate"), "antialias=True")
        attrs: dict[str, Any] = {"mode": mode, "align_corners": bool(align_corners) and mode == "bilinear"}
        if scale_factor is not None and not recompute:
            factors = scale_factor if isinstance(scale_factor, (list, tuple)) else (scale_factor,) * 2
            attrs["scale"] = tuple(float(f) for f in factors)
        self._add(fx_node, "resize", [x], attrs=attrs, **kw)

    # --- data movement --------------------------------------------------------------------------

    def _rule_permute(self, fx_node) -> None:
        x = self._tensor(fx_node, fx_node.args[0])
        dims = fx_node.kwargs.get("dims", fx_node.args[1:] if len(fx_node.args) > 2 else
                                  (fx_node.args[1] if len(fx_node.args) > 1 else None))
        rank = self._rank(x)
        self._add(fx_node, "permute", [x], attrs={"dims": tuple(self._ndim_axis(d, rank)
                                                                for d in _ints(self._const(dims)))})

    def _rule_transpose(self, fx_node) -> None:
        x = self._tensor(fx_node, fx_node.args[0])
        rank = self._rank(x)
        if len(fx_node.args) == 1 and not fx_node.kwargs:        # torch.t / x.t()
            a, b = 0, rank - 1
        else:
            bound = _bind(fx_node, ("input", "dim0", "dim1"), {})
            a, b = (self._ndim_axis(int(self._const(bound[k])), rank) for k in ("dim0", "dim1"))
        dims = list(range(rank))
        dims[a], dims[b] = dims[b], dims[a]
        self._add(fx_node, "transpose", [x], attrs={"dims": tuple(dims)})

    def _rule_unsqueeze(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "dim"), {})
        x = self._tensor(fx_node, a["input"])
        dim = self._ndim_axis(int(self._const(a["dim"])), self._rank(x) + 1)
        self._add(fx_node, "unsqueeze", [x], attrs={"dim": dim})

    def _rule_chunk(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "chunks", "dim"), {"dim": 0})
        x = self._tensor(fx_node, a["input"])
        dim = self._ndim_axis(int(self._const(a["dim"])), self._rank(x))
        length = self.graph.tensor(x.tensor).shape[dim]
        step = -(-length // int(self._const(a["chunks"])))
        self._pieces(_Pieces(x, fx_node, "chunk", dim, [(s, min(s + step, length)) for s in range(0, length, step)]))

    def _rule_split(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "split_size_or_sections", "dim"), {"dim": 0})
        if "split_size" in fx_node.kwargs:
            a["split_size_or_sections"] = fx_node.kwargs["split_size"]
        x = self._tensor(fx_node, a["input"])
        dim = self._ndim_axis(int(self._const(a["dim"])), self._rank(x))
        length = self.graph.tensor(x.tensor).shape[dim]
        sizes = self._const(a["split_size_or_sections"])
        if isinstance(sizes, (list, tuple)):
            edges = np.cumsum([0] + [int(s) for s in sizes]).tolist()
            bounds = list(zip(edges[:-1], edges[1:]))
        else:
            bounds = [(s, min(s + int(sizes), length)) for s in range(0, length, int(sizes))]
        self._pieces(_Pieces(x, fx_node, "split", dim, bounds))

    def _pieces(self, pieces: _Pieces) -> None:
        """Nodes of the pieces the model reads, right after the call and in index order (so the
        graph does not depend on when or how, `[i]` or `.values`, the code reads them)."""
        call = pieces.node
        self.env[call] = pieces
        reads: dict[int, torch.fx.Node] = {}
        for user in call.users:
            if user.op != "call_function" or user.target not in (operator.getitem, getattr):
                raise self._fail(user, f"torch.{pieces.op}", "its result is used as a whole; read its "
                                 "pieces one by one (pieces[i])")
            index = {"values": 0, "indices": 1}.get(user.args[1], user.args[1])
            if not isinstance(index, int):
                raise self._fail(user, f"torch.{pieces.op}", f"index {user.args[1]!r}")
            if user.users:                      # `a, _ = x.chunk(2)`: an unread piece is no node
                reads.setdefault(index % max(len(pieces.bounds), 2), user)
        for index in sorted(reads):
            user = reads[index]
            name = f"{self._node_name(call)}_{index}"
            if pieces.op == "max":
                if index != 0:
                    raise self._fail(user, "torch.max", "its indices (argmax) are not supported")
                self._add(user, "max", [pieces.source], attrs={"dims": (pieces.dim,), "keepdim": pieces.keepdim},
                          name=name)
                continue
            start, end = pieces.bounds[index]
            self._add(user, pieces.op, [pieces.source], attrs={"dim": pieces.dim, "start": start, "end": end},
                      layer_type=pieces.op, name=name)

    def _read_piece(self, fx_node) -> bool:
        """`pieces[i]` / `.values`: its node was made with the call (`_pieces`)."""
        base = self.env.get(fx_node.args[0]) if isinstance(fx_node.args[0], torch.fx.Node) else None
        return isinstance(base, _Pieces)

    def _pad(self, fx_node, x, pad, mode, value, kw) -> None:
        rank = self._rank(x)
        pad = _ints(pad)
        if mode not in ("constant", "reflect", "replicate"):
            raise self._fail(fx_node, _label(fx_node, "pad"), f"mode '{mode}' (constant, reflect and "
                             "replicate are supported)")
        if len(pad) % 2 or len(pad) // 2 > rank:
            raise self._fail(fx_node, _label(fx_node, "pad"), f"padding {list(pad)} for a rank-{rank} input")
        if any(p < 0 for p in pad):
            raise self._fail(fx_node, _label(fx_node, "pad"), "negative padding (cropping)")
        pairs = [(0, 0)] * rank
        for i in range(len(pad) // 2):
            pairs[rank - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        self._add(fx_node, "pad", [x], attrs={"pads": tuple(pairs), "mode": mode,
                                              "value": float(value or 0.0)}, **kw)

    def _rule_pad(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "pad", "mode", "value"), {"mode": "constant", "value": None})
        self._pad(fx_node, self._tensor(fx_node, a["input"]), self._const(a["pad"]), self._const(a["mode"]),
                  self._const(a["value"]), {})

    # --- activations the DPU runs ---------------------------------------------------------------

    def _clamp(self, fx_node, x, low, high, kw) -> None:
        low, high = self._const(low), self._const(high)
        if isinstance(low, torch.Tensor) or isinstance(high, torch.Tensor):
            raise self._fail(fx_node, _label(fx_node, "clamp"), "tensor bounds (numbers are supported)")
        if low is None and high is None:
            raise self._fail(fx_node, _label(fx_node, "clamp"), "neither min nor max")
        self._add(fx_node, "clamp", [x], attrs={"min": None if low is None else float(low),
                                                "max": None if high is None else float(high)}, **kw)

    def _rule_clamp(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "min", "max"), {"min": None, "max": None})
        self._clamp(fx_node, self._tensor(fx_node, a["input"]), a["min"], a["max"], {})

    def _rule_hardtanh(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "min_val", "max_val"), {"min_val": -1.0, "max_val": 1.0})
        self._clamp(fx_node, self._tensor(fx_node, a["input"]), a["min_val"], a["max_val"], {})

    def _rule_prelu(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "weight"), {})
        x = self._tensor(fx_node, a["input"])
        self._add(fx_node, "prelu", [x], params={"weight": self._arg_param(fx_node, a["weight"], "weight")})

    def _rule_matmul(self, fx_node) -> None:
        a, b = fx_node.args[0], fx_node.args[1] if len(fx_node.args) > 1 else fx_node.kwargs.get("other")
        for operand in (a, b):
            value = self.env.get(operand) if isinstance(operand, torch.fx.Node) else None
            shape = (self.graph.tensor(value.tensor).shape if hasattr(value, "tensor") else
                     tuple(getattr(self._const(operand), "shape", ())))
            if len(shape) < 2:
                raise self._fail(fx_node, _label(fx_node), "an operand of rank < 2 (vector products are not "
                                 "supported; unsqueeze it)")
        self._binary(fx_node, "matmul", a, b)

    # --- ops that run in float -----------------------------------------------------------------

    def _float_activation(self, fx_node, op: str, x, module: nn.Module | None, kw, **given: Any) -> None:
        if op == "gelu":
            attrs = {"approximate": str(given.get("approximate", getattr(module, "approximate", "none")))}
        elif op == "elu":
            attrs = {"alpha": float(given.get("alpha", getattr(module, "alpha", 1.0)))}
        else:
            attrs = {}
        self._add(fx_node, op, [x], attrs=attrs, **kw)

    def _rule_gelu(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "approximate"), {"approximate": "none"})
        self._float_activation(fx_node, "gelu", self._tensor(fx_node, a["input"]), None, {},
                               approximate=self._const(a["approximate"]))

    def _rule_elu(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "alpha"), {"alpha": 1.0})
        self._float_activation(fx_node, "elu", self._tensor(fx_node, a["input"]), None, {},
                               alpha=self._const(a["alpha"]))

    def _rule_silu(self, fx_node) -> None:
        x = self._tensor(fx_node, fx_node.args[0])
        self._add(fx_node, "hardswish" if self.silu_to_hswish else "silu", [x])

    def _rule_hardsigmoid(self, fx_node) -> None:
        self._add(fx_node, "hardsigmoid", [self._tensor(fx_node, fx_node.args[0])])

    def _rule_layer_norm(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "normalized_shape", "weight", "bias", "eps"),
                  {"weight": None, "bias": None, "eps": 1e-5})
        self._functional_norm(fx_node, "layer_norm", a, {"normalized_shape": _ints(self._const(a["normalized_shape"]))})

    def _rule_group_norm(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "num_groups", "weight", "bias", "eps"),
                  {"weight": None, "bias": None, "eps": 1e-5})
        self._functional_norm(fx_node, "group_norm", a, {"num_groups": int(self._const(a["num_groups"]))})

    def _rule_instance_norm(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "running_mean", "running_var", "weight", "bias", "use_input_stats",
                            "momentum", "eps"), {"running_mean": None, "running_var": None, "weight": None,
                                                 "bias": None, "use_input_stats": True, "eps": 1e-5})
        if not self._const(a["use_input_stats"]):
            raise self._fail(fx_node, _label(fx_node), "use_input_stats=False (use nn.InstanceNorm2d with "
                             "track_running_stats=True, which is folded like BatchNorm)")
        self._functional_norm(fx_node, "instance_norm", a, {})

    def _functional_norm(self, fx_node, op: str, a: dict[str, Any], attrs: dict[str, Any]) -> None:
        x = self._tensor(fx_node, a["input"])
        params = {role: t for role in ("weight", "bias")
                  if (t := self._arg_param(fx_node, a[role], role)) is not None}
        self._add(fx_node, op, [x], attrs={**attrs, "eps": float(self._const(a["eps"]))}, params=params)

    def _reduce(self, fx_node, op: str, x, dims, keepdim) -> None:
        rank = self._rank(x)
        keep = bool(self._const(keepdim))
        if dims is None:
            if not keep:
                raise self._fail(fx_node, _label(fx_node), "a reduction of every axis to a scalar (give dim=)")
            dims = tuple(range(rank))
        self._add(fx_node, op, [x], attrs={"dims": dims, "keepdim": keep})

    def _rule_sum(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "dim", "keepdim", "dtype"), {"dim": None, "keepdim": False, "dtype": None})
        if self._const(a["dtype"]) is not None:
            raise self._fail(fx_node, _label(fx_node), "dtype=")
        x = self._tensor(fx_node, a["input"])
        self._reduce(fx_node, "sum", x, self._dims(fx_node, x, a["dim"]), a["keepdim"])

    def _rule_amax(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "dim", "keepdim"), {"dim": (), "keepdim": False})
        x = self._tensor(fx_node, a["input"])
        self._reduce(fx_node, "max", x, self._dims(fx_node, x, a["dim"]), a["keepdim"])

    def _rule_max(self, fx_node) -> None:
        a = _bind(fx_node, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        second = self.env.get(a["dim"]) if isinstance(a["dim"], torch.fx.Node) else None
        if "other" in a or hasattr(second, "tensor") or isinstance(self._const(a["dim"]), torch.Tensor):
            raise self._fail(fx_node, _label(fx_node), "the elementwise maximum of two tensors")
        x = self._tensor(fx_node, a["input"])
        dim = self._const(a["dim"])
        if dim is None:
            self._reduce(fx_node, "max", x, None, False)
            return
        dim = self._ndim_axis(int(dim), self._rank(x))
        self._pieces(_Pieces(x, fx_node, "max", dim, [], keepdim=bool(self._const(a["keepdim"]))))


def _label(fx_node: torch.fx.Node, default: str | None = None) -> str:
    from .lower import _op_label

    return _op_label(fx_node) if default is None else f"{_op_label(fx_node)} ({default})"


#: call_function targets -> rule name (`OpRules._rule_<name>`).
_FUNCTION_NAMES: dict[Any, str] = {
    torch.permute: "permute", torch.transpose: "transpose", torch.swapaxes: "transpose",
    torch.t: "transpose", torch.unsqueeze: "unsqueeze", torch.chunk: "chunk", torch.split: "split",
    F.pad: "pad", torch.clamp: "clamp", torch.clip: "clamp", F.hardtanh: "hardtanh",
    F.prelu: "prelu", torch.prelu: "prelu", torch.matmul: "matmul", torch.bmm: "matmul",
    operator.matmul: "matmul", F.gelu: "gelu", F.elu: "elu", F.silu: "silu",
    F.hardsigmoid: "hardsigmoid", F.layer_norm: "layer_norm", F.group_norm: "group_norm",
    F.instance_norm: "instance_norm", torch.sum: "sum", torch.max: "max", torch.amax: "amax",
}
#: Tensor methods -> rule name.
_METHOD_NAMES: dict[str, str] = {
    "permute": "permute", "transpose": "transpose", "swapaxes": "transpose", "t": "transpose",
    "unsqueeze": "unsqueeze", "chunk": "chunk", "split": "split", "clamp": "clamp", "clip": "clamp",
    "clamp_": "clamp", "clip_": "clamp", "matmul": "matmul", "bmm": "matmul", "sum": "sum", "max": "max",
    "amax": "amax",
}
