"""Deploy-check dumps of the CNN flow (bin mode, spec xmodel-format.md §3).

Why next to the xmodel: the target's tools compare a deployed model with these files op by op,
so every file stem is an xmodel op name, activations are in the xmodel's layout (NHWC / NLC; a
flatten folded into the dense layer after it in channels-last order, `flatten_fold`),
and each param's `<param>.bin` holds exactly the bytes of its xmodel `const` (taken from the
XGraph that `build_cnn_xgraph` writes, so they cannot drift apart). Writing goes through
`DeployCheckWriter`, which renders every file first and moves the finished directory into place,
or only stages it in the `ExportUnit` of a whole export (`bundle.write_xmodel_bundle`). Data the
dump format cannot hold (NaN, a bit width other than 1..8 or 16) raises EXPORT_XMODEL naming the
node, before anything is written.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..deploy_check import DEPLOY_CHECK_DIR, DeployCheckError, DeployCheckWriter, DirectoryStager, DumpRecord
from ..graph import Graph, to_op_name
from ..messages import error, warn
from ..progress import progress
from ..xmodel import XGraph
from .flatten_fold import xir_value
from .validate import fix_of
from .xmodel import build_cnn_xgraph

__all__ = ["write_cnn_deploy_check", "DEPLOY_CHECK_DIR"]


def _param_records(graph: Graph, xgraph: XGraph) -> list[DumpRecord]:
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
    batch: DirectoryStager | None = None,
    xgraph: XGraph | None = None,
) -> Path:
    """Write `output_dir/deploy_check_data_int/<graph>/` and return that directory.

    `values` maps node output tensor names to their values from one forward pass of the
    quantized model (torch layout, batch 1, already on the fix grid where the node is
    quantized). Nodes with no value are left out with a DEPLOY_CHECK_NO_INPUT warning. With
    `batch` the directory is only staged there (it appears when the batch commits); `xgraph` is
    the graph's `build_cnn_xgraph` result when the caller already has it."""
    if xgraph is None:
        xgraph = build_cnn_xgraph(graph)  # validates the graph and checks batch 1 (XMODEL_BATCHSIZE)
    params = _param_records(graph, xgraph)
    records: list[DumpRecord] = []
    for node in progress(graph.topological_order(), f"dump {graph.name}", unit="node"):
        tensor = node.outputs[0]
        if tensor not in values:
            warn("DEPLOY_CHECK_NO_INPUT", layer=node.name)
            continue
        value = np.asarray(values[tensor], dtype=np.float32)
        if value.ndim == 0 or value.shape[0] != 1:
            raise error("XMODEL_BATCHSIZE", batch_size=value.shape[0] if value.ndim else 0)
        fix = fix_of(node)
        bw, fp = fix if fix is not None else (None, None)
        records.append((node.name, xir_value(graph, node, value), bw, fp))
    writer = DeployCheckWriter(Path(output_dir) / DEPLOY_CHECK_DIR, data_format="bin",
                               shape_style="list", batch=batch)
    try:
        return writer.write_tensors(graph.name, records, params)
    except DeployCheckError as exc:  # raised while rendering, before any file is written
        raise error("EXPORT_XMODEL", graph=graph.name, reason=f"its deploy-check data cannot be "
                                                             f"written: {exc}") from None
