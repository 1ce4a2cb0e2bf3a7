"""A parser of quant_report.html for the report tests: every inline SVG plot (its data-plot and
data-cell attributes) with its texts and polylines, in page order."""
from __future__ import annotations

from html.parser import HTMLParser


class ReportPlots(HTMLParser):
    """After `feed(html)`: `plots[k]` is (data-plot, data-cell) of the k-th SVG, `texts[k]` its
    ("text", data) and ("polyline", data-series, points) items."""

    def __init__(self):
        super().__init__()
        self.plots, self.texts, self._svg = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            self._svg = (attrs.get("data-plot"), attrs.get("data-cell"))
            self.plots.append(self._svg)
            self.texts.append([])
        if tag == "polyline" and self._svg:
            self.texts[-1].append(("polyline", attrs.get("data-series"), attrs.get("points", "")))

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg = None

    def handle_data(self, data):
        if self._svg:
            self.texts[-1].append(("text", data))
