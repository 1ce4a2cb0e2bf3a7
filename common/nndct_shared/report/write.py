"""Write a report: quant_report.json, quant_report.html and the suggested config, all or nothing."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..output_dir import staged_export
from .html import render_html

__all__ = ["REPORT_HTML", "REPORT_JSON", "SUGGESTED_CONFIG", "ReportFiles", "write_report"]

REPORT_HTML = "quant_report.html"
REPORT_JSON = "quant_report.json"
SUGGESTED_CONFIG = "quant_report_config.json"
"""The suggestion as a config file (the CNN flow's JSON format; per cell node for recurrent cells)."""


@dataclass(frozen=True)
class ReportFiles:
    """What `report()` returns: the written files and the report's numbers (quant_report.json)."""

    html: Path
    json: Path
    config: Path | None
    data: dict[str, Any]


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_report(doc: dict[str, Any], output_dir: str | Path) -> ReportFiles:
    """Stage the files of report `doc` in `output_dir` and swap them in together (a failure
    leaves the previous report as it was)."""
    doc = _json_safe(doc)
    config = (doc.get("suggestion") or {}).get("config")
    out = Path(output_dir)
    files = {"json": (out / REPORT_JSON, json.dumps(doc, indent=1, allow_nan=False) + "\n"),
             "html": (out / REPORT_HTML, render_html(doc, SUGGESTED_CONFIG if config else None))}
    if config:
        files["config"] = (out / SUGGESTED_CONFIG, json.dumps(config, indent=2) + "\n")
    with staged_export(out) as batch:
        written = {key: batch.write_bytes(path, text.encode("utf-8")) for key, (path, text) in files.items()}
    return ReportFiles(written["html"], written["json"], written.get("config"), doc)
