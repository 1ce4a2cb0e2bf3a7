"""The xmodel export of a quantized CNN graph into a directory, all or nothing.

`export_xmodel(deploy_check=True)` writes two things that only make sense together: the xmodel
and the deploy-check dumps of the same graph and forward pass. Both are built in memory first
(graph checks, XIR conversion, dump rendering), then staged in one export unit and committed
together (`nndct_shared.output_dir.staged_export`, the mechanism of the LSTM export): a failure
or a kill at any point leaves the previous export in that directory byte for byte, and a
file-system failure is OUTPUT_DIR. The unit owns the graph's dump directory, so an export
without deploy-check data removes the dumps of an earlier export (they would not belong to the
new xmodel). The file name comes from the graph name through `dump_file_stem`, so a model name
cannot put a file outside the directory.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..deploy_check import dump_file_stem
from ..graph import Graph
from ..output_dir import staged_export
from ..xmodel import xgraph_to_bytes
from .deploy_dump import DEPLOY_CHECK_DIR, write_cnn_deploy_check
from .xmodel import build_cnn_xgraph

__all__ = ["export_file_name", "write_xmodel_bundle"]


def export_file_name(graph_name: str, suffix: str) -> str:
    """`<stem>_int<suffix>` of an export of graph `graph_name` (`.xmodel`, `.onnx`, `.pt`)."""
    return f"{dump_file_stem(graph_name)}_int{suffix}"


def write_xmodel_bundle(
    graph: Graph,
    values: Mapping[str, np.ndarray] | None,
    output_dir: str | os.PathLike[str],
    extra_files: Mapping[str, bytes] | None = None,
) -> tuple[Path, Path | None]:
    """Write `<output_dir>/<graph>_int.xmodel` and, when `values` is given (node outputs of one
    forward pass, see `write_cnn_deploy_check`), `deploy_check_data_int/<graph>/`, together,
    with `extra_files` (path relative to output_dir -> bytes: QAT adds the quant_info.json and
    deployable model the xmodel was made from) in the same unit.

    Returns (xmodel path, dump directory or None)."""
    xgraph = build_cnn_xgraph(graph)  # CNN_GRAPH_INVALID, XMODEL_BATCHSIZE, EXPORT_UNSUPPORTED
    data = xgraph_to_bytes(xgraph)
    with staged_export(output_dir, owns=[f"{DEPLOY_CHECK_DIR}/{dump_file_stem(graph.name)}"]) as batch:
        out = batch.root
        path = batch.write_bytes(out / export_file_name(graph.name, ".xmodel"), data)
        for name, extra in (extra_files or {}).items():
            batch.write_bytes(out / name, extra)
        dump = None
        if values is not None:
            dump = write_cnn_deploy_check(graph, values, out, batch=batch, xgraph=xgraph)
    return path, dump
