"""Saving and loading the adjusted params of a converted model (fast finetune, bias correction).

The file is a plain `{param tensor name: tensor}` dict written with `torch.save` (loadable with
`weights_only=True`), keyed by the captured graph's tensor names, which are the same in calib
and test mode for the same float model. Loading also updates the captured graph's numpy params,
because the exporters (xmodel, ONNX) read the weights from the graph, not from the torch model.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from nndct_shared.graph import Graph
from nndct_shared.messages import error
from nndct_shared.output_dir import staged_export

from ..nn.cnn_modules import NodeModule
from .layer_data import node_modules

__all__ = ["collect_params", "load_params", "params_bytes", "parse_param_file", "read_param_file", "save_params", "sync_graph"]


def collect_params(modules: Iterable[NodeModule]) -> dict[str, torch.Tensor]:
    """{graph tensor name: cpu copy} of the weight and bias of `modules`."""
    result: dict[str, torch.Tensor] = {}
    for m in modules:
        for role, name in m.param_names.items():
            value = getattr(m, role, None)
            if role in ("weight", "bias") and value is not None:
                result[name] = value.detach().to("cpu").clone()
    return result


def params_bytes(params: dict[str, torch.Tensor]) -> bytes:
    """The bytes `torch.save` writes for `params` (to stage them with other files)."""
    buffer = io.BytesIO()
    torch.save(params, buffer)
    return buffer.getvalue()


def save_params(params: dict[str, torch.Tensor], path: Path) -> Path:
    """Write `params` (torch.save) as one export into its directory (`staged_export`)."""
    data = params_bytes(params)
    with staged_export(Path(path).parent) as unit:
        return unit.write_bytes(path, data)


def sync_graph(graph: Graph, modules: Iterable[NodeModule]) -> None:
    """Copy the modules' current weight/bias into the graph's numpy params."""
    for m in modules:
        node = graph.node(m.node_name)
        for role in ("weight", "bias"):
            value = getattr(m, role, None)
            if value is not None and role in node.params:
                node.params[role].data = value.detach().to("cpu", torch.float32).numpy().copy()


def read_param_file(path: Path, missing: str = "FAST_FINETUNE") -> dict:
    """The dict a params file holds, loaded with `weights_only=True` (a missing file -> the
    catalogue error `missing`; unreadable or not a dict -> FT_PARAM_MISMATCH)."""
    if not path.is_file():
        raise error(missing, path=str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error("FT_PARAM_MISMATCH", path=str(path), problem=f"it cannot be read ({exc})") from None
    return parse_param_file(path, data)


def parse_param_file(path: Path, data: bytes) -> dict:
    """The dict params file `path` holds, from its content `data` (read earlier, e.g. from a
    pinned version of output_dir), as `read_param_file` checks it; messages name `path`."""
    try:
        params = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which file, not a pickle trace
        raise error("FT_PARAM_MISMATCH", path=str(path), problem=f"it cannot be read ({exc})") from None
    if not isinstance(params, dict):
        raise error("FT_PARAM_MISMATCH", path=str(path), problem="it does not hold a dict")
    return params


def load_params(model: nn.Module, graph: Graph, path: Path, missing: str = "FAST_FINETUNE",
                params: dict | None = None) -> list[str]:
    """Load a params file into `model` and `graph`; returns the names loaded.

    Missing file -> the catalogue error `missing` (with `path`); a name or shape the model does not have -> FT_PARAM_MISMATCH.
    `params`: the file's dict when it was read already (`read_param_file`).
    """
    params = read_param_file(path, missing) if params is None else params
    owners = {}
    for m in node_modules(model):
        for role, name in m.param_names.items():
            owners[name] = (m, role)
    for name, value in params.items():
        if name not in owners or not isinstance(value, torch.Tensor):
            raise error("FT_PARAM_MISMATCH", path=str(path), problem=f"the model has no parameter '{name}'")
        m, role = owners[name]
        current = getattr(m, role)
        if current is None or tuple(current.shape) != tuple(value.shape):
            shape = None if current is None else tuple(current.shape)
            raise error("FT_PARAM_MISMATCH", path=str(path),
                        problem=f"'{name}' has shape {tuple(value.shape)}, the model's is {shape}")
    with torch.no_grad():
        for name, value in params.items():
            m, role = owners[name]
            getattr(m, role).copy_(value.to(getattr(m, role).device))
    sync_graph(graph, {owners[n][0] for n in params})
    return list(params)
