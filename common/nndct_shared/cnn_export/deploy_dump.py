"""Deploy-check dumps of the CNN flow (bin mode, spec xmodel-format.md §3).

Why next to the xmodel: the target's tools compare a deployed model with these files op by op,
so every file stem is an xmodel op name, activations are in the xmodel's layout (NHWC / NLC),
and each param's `<param>.bin` holds exactly the bytes of its xmodel `const` (taken from the
XGraph that `build_cnn_xgraph` writes, so they cannot drift apart). Writing goes through
`DeployCheckWriter`, which renders every file first and moves the finished directory into place.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..deploy_check import DeployCheckWriter, DumpRecord
from ..graph import Graph, to_op_name
from ..messages import error, warn
from .layout import to_xir
from .validate import fix_of
from .xmodel import build_cnn_xgraph

__all__ = ["write_cnn_deploy_check", "DEPLOY_CHECK_DIR"]

DEPLOY_CHECK_DIR = "deploy_check_data_int"


def _param_records(graph: Graph) -> list[DumpRecord]:
    xgraph = build_cnn_xgraph(graph)
    records: list[DumpRecord] = []
    seen: set[str] = set()
    for node in graph.topological_order():
        for tensor in node.params.values():
            name = to_op_name(tensor.name)
            if name in seen:
                continue
            seen.add(name)
            data = xgraph.op(name).const_array()
            fix = tensor.attrs.get("fix")
            bw, fp = (int(fix[0]), int(fix[1])) if fix is not None else (None, None)
            records.append((tensor.name, data, bw, fp))
    return records


def write_cnn_deploy_check(
    graph: Graph,
    values: Mapping[str, np.ndarray],
    output_dir: str | os.PathLike[str],
) -> Path:
    """Write `output_dir/deploy_check_data_int/<graph>/` and return that directory.

    `values` maps node output tensor names to their values from one forward pass of the
    quantized model (torch layout, batch 1, already on the fix grid where the node is
    quantized). Nodes with no value are left out with a DEPLOY_CHECK_NO_INPUT warning."""
    params = _param_records(graph)  # validates the graph and checks batch 1 (XMODEL_BATCHSIZE)
    records: list[DumpRecord] = []
    for node in graph.topological_order():
        tensor = node.outputs[0]
        if tensor not in values:
            warn("DEPLOY_CHECK_NO_INPUT", layer=node.name)
            continue
        value = np.asarray(values[tensor], dtype=np.float32)
        if value.ndim == 0 or value.shape[0] != 1:
            raise error("XMODEL_BATCHSIZE", batch_size=value.shape[0] if value.ndim else 0)
        fix = fix_of(node)
        bw, fp = fix if fix is not None else (None, None)
        records.append((node.name, to_xir(value), bw, fp))
    writer = DeployCheckWriter(Path(output_dir) / DEPLOY_CHECK_DIR, data_format="bin",
                               shape_style="list")
    return writer.write_tensors(graph.name, records, params)
