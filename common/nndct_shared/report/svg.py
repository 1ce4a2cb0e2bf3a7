"""The report's plots as inline SVG text: a heatmap, line plots and horizontal bar charts.

Written by hand (a few hundred lines of SVG elements) so that the report needs no plotting
library and the HTML file is self-contained: every plot is an ``<svg>`` element with a
``data-plot`` attribute naming what it shows, readable offline in any browser and by tests.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

__all__ = ["bar_chart", "heatmap", "line_plot"]

FONT = 'font-family="Helvetica,Arial,sans-serif" font-size="11"'
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _num(v: float) -> str:
    return f"{v:.1f}"


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.1e}"
    return f"{v:g}"


def _svg(plot: str, width: int, height: int, body: list[str], title: str, attrs: str = "") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" data-plot="{escape(plot)}"{attrs} '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
            f"<title>{escape(title)}</title>"
            f'<rect width="{width}" height="{height}" fill="white"/>' + "".join(body) + "</svg>")


def _color(fraction: float) -> str:
    """Red (0, bad) through yellow to blue-green (1, good)."""
    f = min(max(fraction, 0.0), 1.0)
    stops = ((0.0, (178, 24, 43)), (0.35, (244, 165, 130)), (0.6, (253, 219, 120)), (0.8, (146, 197, 222)),
             (1.0, (33, 102, 172)))
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if f <= b:
            t = (f - a) / (b - a)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(ca, cb))
            return f"rgb({r},{g},{bl})"
    return "rgb(33,102,172)"


def heatmap(plot: str, title: str, rows: Sequence[str], values: Sequence[Sequence[float | None]], x_label: str,
            value_label: str, attrs: str = "") -> str:
    """rows x columns of dB values (None or +inf: exact, drawn as the best colour)."""
    flat = _finite(v for row in values for v in row)
    lo, hi = (min(flat), max(flat)) if flat else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    cols = max((len(r) for r in values), default=0)
    left, top, cell_h = 150, 34, 14
    cell_w = max(4.0, min(24.0, 640.0 / max(cols, 1)))
    width = int(left + cols * cell_w + 90)
    height = int(top + len(rows) * cell_h + 44)
    body = [f'<text x="{left}" y="16" {FONT} font-weight="bold">{escape(title)}</text>']
    for i, (label, row) in enumerate(zip(rows, values)):
        y = top + i * cell_h
        body.append(f'<text x="{left - 6}" y="{_num(y + cell_h - 3)}" text-anchor="end" {FONT}>{escape(label)}</text>')
        for j, v in enumerate(row):
            exact = v is None or (isinstance(v, float) and math.isinf(v) and v > 0)
            frac = 1.0 if exact else (float(v) - lo) / (hi - lo)
            tip = "exact" if exact else f"{float(v):.1f} dB"
            body.append(f'<rect x="{_num(left + j * cell_w)}" y="{y}" width="{_num(cell_w)}" height="{cell_h}" '
                        f'fill="{_color(frac)}"><title>{escape(label)}, step {j}: {tip}</title></rect>')
    axis_y = top + len(rows) * cell_h
    for t in _ticks(0, max(cols - 1, 0), min(cols, 10) or 1):
        x = left + (t + 0.5) * cell_w
        body.append(f'<text x="{_num(x)}" y="{axis_y + 14}" text-anchor="middle" {FONT}>{int(t)}</text>')
    body.append(f'<text x="{_num(left + cols * cell_w / 2)}" y="{axis_y + 32}" text-anchor="middle" {FONT}>'
                f"{escape(x_label)}</text>")
    legend_x = left + cols * cell_w + 20
    for k in range(11):
        body.append(f'<rect x="{_num(legend_x)}" y="{_num(top + (10 - k) * 10)}" width="14" height="10" '
                    f'fill="{_color(k / 10)}"/>')
    body.append(f'<text x="{_num(legend_x + 18)}" y="{top + 9}" {FONT}>{hi:.1f}</text>')
    body.append(f'<text x="{_num(legend_x + 18)}" y="{top + 109}" {FONT}>{lo:.1f}</text>')
    body.append(f'<text x="{_num(legend_x)}" y="{top + 126}" {FONT}>{escape(value_label)}</text>')
    return _svg(plot, width, height, body, title, attrs)


def line_plot(plot: str, title: str, series: dict[str, Sequence[float]], x_label: str, y_label: str,
              attrs: str = "") -> str:
    """One line per series against its index (0, 1, ...)."""
    values = _finite(v for s in series.values() for v in s)
    lo, hi = (min(values + [0.0]), max(values + [0.0])) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    n = max((len(s) for s in series.values()), default=1)
    left, top, w, h = 64, 30, 560, 220
    width, height = left + w + 150, top + h + 48

    def px(i: float) -> float:
        return left + (i / max(n - 1, 1)) * w

    def py(v: float) -> float:
        return top + h - (v - lo) / (hi - lo) * h

    body = [f'<text x="{left}" y="16" {FONT} font-weight="bold">{escape(title)}</text>',
            f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for t in _ticks(lo, hi):
        body.append(f'<line x1="{left}" x2="{left + w}" y1="{_num(py(t))}" y2="{_num(py(t))}" stroke="#eee"/>'
                    f'<text x="{left - 6}" y="{_num(py(t) + 4)}" text-anchor="end" {FONT}>{_fmt(t)}</text>')
    for t in _ticks(0, n - 1, min(n - 1, 10) or 1):
        body.append(f'<text x="{_num(px(t))}" y="{top + h + 14}" text-anchor="middle" {FONT}>{int(t)}</text>')
    body.append(f'<text x="{left + w / 2}" y="{top + h + 34}" text-anchor="middle" {FONT}>{escape(x_label)}</text>')
    body.append(f'<text x="14" y="{top + h / 2}" text-anchor="middle" transform="rotate(-90 14 {top + h / 2})" '
                f"{FONT}>{escape(y_label)}</text>")
    for k, (name, ys) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{_num(px(i))},{_num(py(float(v)))}" for i, v in enumerate(ys)
                          if v is not None and math.isfinite(float(v)))
        body.append(f'<polyline data-series="{escape(name)}" points="{points}" fill="none" stroke="{color}" '
                    f'stroke-width="1.8"/>')
        body.append(f'<line x1="{left + w + 16}" x2="{left + w + 36}" y1="{top + 12 + 18 * k}" '
                    f'y2="{top + 12 + 18 * k}" stroke="{color}" stroke-width="2"/>'
                    f'<text x="{left + w + 42}" y="{top + 16 + 18 * k}" {FONT}>{escape(name)}</text>')
    return _svg(plot, width, height, body, title, attrs)


def bar_chart(plot: str, title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
              value_label: str, attrs: str = "") -> str:
    """Horizontal bars, one group per label, one bar per series (None / inf: drawn as 'exact')."""
    values = _finite(v for s in series.values() for v in s)
    lo = min(values + [0.0]) if values else 0.0
    hi = max(values + [0.0]) if values else 1.0
    hi = hi if hi > lo else lo + 1.0
    k = len(series)
    bar_h, gap = 9, 6
    left, top, w = 260, 40, 420
    group_h = k * bar_h + gap
    width, height = left + w + 60, int(top + len(labels) * group_h + 40)

    def px(v: float) -> float:
        return left + (v - lo) / (hi - lo) * w

    body = [f'<text x="8" y="16" {FONT} font-weight="bold">{escape(title)}</text>']
    for j, name in enumerate(series):
        body.append(f'<rect x="{left + 210 * j}" y="24" width="10" height="9" fill="{PALETTE[j % len(PALETTE)]}"/>'
                    f'<text x="{left + 210 * j + 14}" y="32" {FONT}>{escape(name)}</text>')
    for t in _ticks(lo, hi):
        x = px(t)
        body.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{top + len(labels) * group_h}" stroke="#eee"/>'
                    f'<text x="{_num(x)}" y="{top + len(labels) * group_h + 14}" text-anchor="middle" {FONT}>'
                    f"{_fmt(t)}</text>")
    zero = px(0.0)
    for i, label in enumerate(labels):
        y0 = top + i * group_h
        body.append(f'<text x="{left - 6}" y="{y0 + k * bar_h / 2 + 4}" text-anchor="end" {FONT}>{escape(label)}</text>')
        for j, (name, vals) in enumerate(series.items()):
            v = vals[i]
            exact = v is None or not math.isfinite(float(v))
            x1 = px(hi) if exact else px(float(v))
            a, b = sorted((zero, x1))
            tip = "exact" if exact else f"{float(v):.2f}"
            faded = ' fill-opacity="0.35"' if exact else ""
            body.append(f'<rect x="{_num(a)}" y="{y0 + j * bar_h}" width="{_num(max(b - a, 0.5))}" height="{bar_h - 1}" '
                        f'fill="{PALETTE[j % len(PALETTE)]}"{faded}>'
                        f"<title>{escape(label)}: {escape(name)} {tip}</title></rect>")
    body.append(f'<text x="{left + w / 2}" y="{top + len(labels) * group_h + 32}" text-anchor="middle" {FONT}>'
                f"{escape(value_label)}</text>")
    return _svg(plot, width, height, body, title, attrs)
