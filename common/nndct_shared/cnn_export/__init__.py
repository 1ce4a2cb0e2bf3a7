"""Framework-neutral exporters of the CNN flow: xmodel, deploy-check dumps, ONNX (QDQ).

They read a neutral `Graph` that follows the op registry `nndct_shared.graph.ops` (validated first by
`validate_cnn_graph`). `reference.run_reference` executes such a graph in NumPy and is the
independent answer the exporters are tested against; `xmodel_eval` runs a written xmodel.
`bundle.write_xmodel_bundle` writes an xmodel and its deploy-check dumps all or nothing.
The ONNX exporter imports `onnx` lazily, so this package needs only NumPy.
"""
from __future__ import annotations

from .bundle import export_file_name, write_xmodel_bundle
from .deploy_dump import write_cnn_deploy_check
from .kernels import dpu_avgpool_scale
from .onnx_qdq import build_onnx_model, write_onnx
from .reference import run_reference
from .validate import validate_cnn_graph
from .xmodel import build_cnn_xgraph, write_cnn_xmodel
from .xmodel_eval import evaluate_xgraph, evaluate_xmodel

__all__ = [
    "build_cnn_xgraph",
    "build_onnx_model",
    "dpu_avgpool_scale",
    "evaluate_xgraph",
    "evaluate_xmodel",
    "export_file_name",
    "run_reference",
    "validate_cnn_graph",
    "write_cnn_deploy_check",
    "write_cnn_xmodel",
    "write_onnx",
    "write_xmodel_bundle",
]
