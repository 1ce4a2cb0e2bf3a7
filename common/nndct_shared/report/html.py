"""quant_report.html: the report's numbers as one self-contained page (inline CSS and SVG, no
script, no external resource), so that it opens offline and can be mailed or archived."""
from __future__ import annotations

import math
from html import escape
from typing import Any, Sequence

from .svg import bar_chart, heatmap, line_plot

__all__ = ["render_html", "SENSITIVITY_BARS"]

SENSITIVITY_BARS = 20
"""Rows shown in the sensitivity chart (the table lists all)."""

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}h3{font-size:15px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}td.l,th.l{text-align:left}
th{background:#f4f4f4}tr.keep td{background:#fff3cd}
.box{background:#f7f9fc;border:1px solid #cdd9ea;padding:10px 14px;margin:10px 0}
.bad{color:#b2182b;font-weight:bold}.muted{color:#666;font-size:12px}
figure{margin:12px 0}svg{max-width:100%;height:auto}
"""


def _n(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return "exact" if v == "inf" else v
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return "exact" if v > 0 else "-inf"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def _pct(v: float) -> str:
    return "0" if v == 0 else f"{100 * v:.3g}%"


def _db(v: Any) -> float | None:
    if v is None or v == "inf":
        return None
    return -math.inf if v == "-inf" else float(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1, classes: Sequence[str] = ()) -> str:
    head = "".join(f'<th class="l">{escape(h)}</th>' if i < left else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(header))
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{classes[k]}"' if k < len(classes) and classes[k] else ""
        cells = "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _summary(doc: dict[str, Any]) -> str:
    m = doc["model"]
    rows = [["flow", escape(f"{doc['framework']} {doc['flow']} ({doc['mode']} mode)")],
            ["bit widths", escape(", ".join(map(str, doc["bit_widths"])))],
            ["output values compared", _n(m["outputs"])],
            ["output SQNR (quantized vs float)", f"{_n(m['output_sqnr_db'])} dB"],
            ["output error", _n(m["output_error"], 4)]]
    if "metric_float" in m:
        rows += [["eval_fn, float model", _n(m["metric_float"], 4)], ["eval_fn, quantized model", _n(m["metric_quantized"], 4)]]
    return _table(["", "value"], rows, left=1)


def _suggestion(doc: dict[str, Any], config_file: str | None) -> str:
    s = doc.get("suggestion")
    if not s:
        return "<p>Sensitivity analysis was turned off.</p>"
    target = s["target"]
    goal = (f"eval_fn at least {_n(target['metric_min'], 4)}" if "metric_min" in target
            else f"output error at most {_n(target['output_error'], 4)}")
    parts = [f'<div class="box"><b>Target:</b> {escape(goal)}. ']
    if s["keep"]:
        parts.append(f"<b>Keep {len(s['keep'])} tensor(s) at {s['high_bit_width']} bits</b>: "
                     + ", ".join(f"<code>{escape(k)}</code>" for k in s["keep"]) + ". ")
    parts.append(f"Result: output error {_n(s['output_error'], 4)} ({_n(s['output_sqnr_db'])} dB)"
                 + (f", eval_fn {_n(s['metric'], 4)}" if s["metric"] is not None else "")
                 + ("." if s["reached"] else ' — <span class="bad">target not reached</span>.'))
    if s.get("note"):
        parts.append(f" <span class='muted'>({escape(s['note'])})</span>")
    if config_file and "config" in s:
        parts.append(f"<br>Config file: <code>{escape(config_file)}</code> (per-tensor bit widths in the JSON "
                     "config format).")
    parts.append(f"<br><span class='muted'>{s['evaluations']} model run(s) for the suggestion.</span></div>")
    return "".join(parts)


def _sensitivity(doc: dict[str, Any]) -> str:
    sens = doc.get("sensitivity")
    if not sens:
        return ""
    rows = sens["rows"]
    keep = set((doc.get("suggestion") or {}).get("keep", []))
    shown = rows[:SENSITIVITY_BARS]
    several = len({r["group"] for r in rows}) > 1
    names = [f"{r['group']}: {r['label']}" if several and r["label"] != r["name"] else (r["label"] or r["name"])
             for r in shown]
    labels = [n if len(n) <= 40 else "…" + n[-39:] for n in names]
    chart = bar_chart("sensitivity", f"Output SQNR (dB) per tensor, the {len(shown)} most sensitive first",
                      labels, {"only this tensor quantized": [_db(r["only_sqnr_db"]) for r in shown],
                               "all but this tensor quantized": [_db(r["all_but_sqnr_db"]) for r in shown]},
                      "output SQNR against the float model (dB); short bars = large error")
    has_metric = any(r["only_metric"] is not None for r in rows)
    header = ["tensor", "kind", "rank", "only: error", "only: SQNR dB", "all but: error", "all but: SQNR dB",
              "rank all but"] + (["only: eval_fn", "all but: eval_fn"] if has_metric else [])
    body = []
    for r in rows:
        line = [f"<code>{escape(r['name'])}</code>", escape(r["kind"]), str(r["rank"]), _n(r["only_error"], 4),
                _n(r["only_sqnr_db"]), _n(r["all_but_error"], 4), _n(r["all_but_sqnr_db"]), str(r["rank_all_but"])]
        if has_metric:
            line += [_n(r["only_metric"], 4), _n(r["all_but_metric"], 4)]
        body.append(line)
    classes = ["keep" if r["name"] in keep else "" for r in rows]
    return (f"<figure>{chart}</figure><p class='muted'>Highlighted rows: tensors of the suggestion.</p>"
            + _table(header, body, left=2, classes=classes))


def _cell(cell: dict[str, Any]) -> str:
    attrs = f' data-cell="{escape(cell["graph"])}"'
    heat = heatmap("cell-node-sqnr", f"{cell['graph']}: SQNR (dB) per node and time step", cell["nodes"],
                   [[_db(v) for v in row] for row in cell["node_sqnr_db"]], "time step (processing order)",
                   "SQNR dB", attrs)
    states = " and ".join(cell["drift"])
    drift = line_plot("cell-drift", f"{cell['graph']}: drift of {states} from float",
                      {f"{name} ({d['node']})": d["relative"] for name, d in cell["drift"].items()},
                      "time step (processing order)", "RMS error / RMS float", attrs)
    bars = bar_chart("cell-node-overall", f"{cell['graph']}: SQNR (dB) per node over all steps", cell["nodes"],
                     {"SQNR": [_db(v) for v in cell["node_sqnr_db_overall"]]}, "SQNR against the float cell (dB)",
                     attrs)
    check = ("the report's cell evaluation reproduces the fixed-point datapath exactly"
             if cell["evaluation_matches_datapath"] else
             f"<span class='bad'>the report's cell evaluation differs from the datapath at {escape(cell['mismatch'])}"
             "</span>")
    kind = cell["cell"] + (f" ({cell['variant'].replace('_', ' ')})" if cell.get("variant") else "")
    note = f" Note: {escape(cell['note'])}." if cell.get("note") else ""
    return (f"<h3>{escape(cell['graph'])}</h3><p class='muted'>{escape(kind)}, {cell['steps']} step(s), "
            f"{cell['calls']} call(s); {check}.{note}</p><figure>{heat}</figure><figure>{drift}</figure>"
            f"<figure>{bars}</figure>")


def _tensors(doc: dict[str, Any]) -> str:
    header = ["tensor", "kind", "bits", "fix pos / scale", "float min", "float max", "clipped", "flushed to 0",
              "SQNR dB", "local SQNR dB"]
    body = []
    for r in doc["tensors"]:
        grid = str(r["fix_pos"]) if "fix_pos" in r else f"{_n(r['scale'], 6)} / zp {r['zero_point']}"
        body.append([f"<code>{escape(r['name'])}</code>", escape(r["kind"]), str(r["bit_width"]), escape(grid),
                     _n(r["float_min"], 4), _n(r["float_max"], 4), _pct(r["clipped_share"]),
                     _pct(r["flushed_share"]), _n(r["sqnr_db"]), _n(r["local_sqnr_db"])])
    return _table(header, body, left=2)


def render_html(doc: dict[str, Any], config_file: str | None = None) -> str:
    """The page for report dict `doc` (`build.build_report`)."""
    cells = "".join(_cell(c) for c in doc["cells"])
    notes = "".join(f"<li>{escape(n)}</li>" for n in doc.get("notes", []))
    definitions = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in doc["definitions"].items())
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Quantization report ({escape(doc['framework'])} {escape(doc['flow'])})</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>Quantization report</h1>{_summary(doc)}"
        + (f"<ul class='muted'>{notes}</ul>" if notes else "")
        + f"<h2 id='suggestion'>Suggestion</h2>{_suggestion(doc, config_file)}"
        + f"<h2 id='sensitivity'>Sensitivity</h2>{_sensitivity(doc)}"
        + (f"<h2 id='cells'>Recurrent cells</h2>{cells}" if cells else "")
        + f"<h2 id='tensors'>Quantized tensors</h2>{_tensors(doc)}"
        + f"<h2 id='definitions'>Definitions</h2><ul class='muted'>{definitions}</ul>"
        + f"<p class='muted'>{escape(doc['producer'])}</p></body></html>\n")
