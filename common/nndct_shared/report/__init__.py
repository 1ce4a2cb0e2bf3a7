"""The quantization report: where precision is lost, and what to keep at more bits.

`quantizer.report(inputs, output_dir=None, eval_fn=None, ...)` of every front end ends here. It
writes `quant_report.html` (one self-contained page, plots as inline SVG), `quant_report.json`
(the same numbers) and `quant_report_config.json` (the suggestion as a config file), together.

Modules: `quant` (tensor grids), `metrics` (SQNR, clipped/flushed shares), `cell_graph`,
`lstm_graph` and `gru_graph` (recurrent cells as node graphs, evaluated with any tensors quantized),
`recurrent` (per-node, per-step analysis of a cell against the float cell), `sensitivity`
(ranking and suggestion, flow-neutral), `build`, `svg`, `html`, `write` (the files),
`lstm_flow` (the recurrent flows' driver), `recurrent_config` and `cnn_config` (the suggestion
as a config file of each flow).
"""
from .build import ReportOptions
from .write import REPORT_HTML, REPORT_JSON, SUGGESTED_CONFIG, ReportFiles

__all__ = ["REPORT_HTML", "REPORT_JSON", "SUGGESTED_CONFIG", "ReportFiles", "ReportOptions"]
