"""Trained QAT weights back into a copy of the float model, so that the ordinary test-mode
quantizer (`torch_quantizer("test", ...)`) deploys it: one code path for PTQ and QAT.

The trainable model holds the capture's params: conv/linear weights with BatchNorm already
folded in. Written back, each folded BatchNorm becomes an exact identity (weight 1, bias 0,
mean 0, var 1, eps 0, so the capture's fold multiplies by exactly 1.0 and adds exactly 0.0),
and a standalone BatchNorm (captured as `scale`) gets weight/bias = the trained scale and
shift with mean 0, var 1, eps 0. Re-capturing the copy therefore gives the trained params bit
for bit, under the same names. A conv that had no bias gets the bias folding created.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nndct_shared.graph import Node

__all__ = ["load_deployable", "write_back"]

_WEIGHTED = frozenset({"linear", "conv1d", "conv2d", "conv_transpose2d"})
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _split(name: str, prefix: str) -> tuple[str, str]:
    local = name[len(prefix):] if name.startswith(prefix) else name
    path, _, attr = local.rpartition(".")
    return path, attr


def _set_param(module: nn.Module, attr: str, value: torch.Tensor) -> None:
    current = getattr(module, attr, None)
    value = value.detach()
    if isinstance(current, torch.Tensor) and current.shape == value.shape:
        with torch.no_grad():
            current.copy_(value.to(device=current.device, dtype=current.dtype))
        return
    setattr(module, attr, nn.Parameter(value.clone()))


def _identity_batchnorm(bn: nn.Module, weight: torch.Tensor | None = None,
                        bias: torch.Tensor | None = None) -> None:
    channels = bn.num_features
    ref = bn.running_mean
    _set_param(bn, "weight", torch.ones(channels, dtype=ref.dtype) if weight is None else weight)
    _set_param(bn, "bias", torch.zeros(channels, dtype=ref.dtype) if bias is None else bias)
    with torch.no_grad():
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
    bn.eps = 0.0


def write_back(float_model: nn.Module, order: Sequence[Node], net: nn.Module, model_name: str) -> None:
    """Copy the trained params of `net` (module_<i> is node order[i]) into `float_model`."""
    prefix = f"{model_name}::"
    standalone: set[str] = set()
    for i, node in enumerate(order):
        if not node.params:
            continue
        module_i = getattr(net, f"module_{i}")
        if node.op_type in _WEIGHTED:
            for role, tensor in node.params.items():
                path, attr = _split(tensor.name, prefix)
                _set_param(float_model.get_submodule(path), attr, getattr(module_i, role))
        elif node.op_type == "scale":
            path, _ = _split(node.params["weight"].name, prefix)
            standalone.add(path)
            _identity_batchnorm(float_model.get_submodule(path), module_i.weight, module_i.bias)
    for path, module in float_model.named_modules():
        if isinstance(module, _BATCHNORMS) and path not in standalone:
            _identity_batchnorm(module)


def load_deployable(float_model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a deployable.pth state dict (saved by `to_deployable`) into a copy of the float
    model: params `write_back` created (the bias of a conv that had none) are created here too,
    then everything is loaded strictly."""
    own = float_model.state_dict()
    for key, value in state.items():
        if key in own:
            continue
        path, _, attr = key.rpartition(".")
        module = float_model.get_submodule(path)
        if getattr(module, attr, None) is not None:
            continue        # not a missing param: let load_state_dict report the key
        _set_param(module, attr, value)
    float_model.load_state_dict(state, strict=True)
