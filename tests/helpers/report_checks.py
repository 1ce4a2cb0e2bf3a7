"""What the recurrent-flow report tests share: a parser of quant_report.html (every inline SVG
plot, its data-plot and data-cell attributes, texts and polylines, in page order), a calibrated
PyTorch quantizer and a classifier's accuracy."""
from __future__ import annotations

from html.parser import HTMLParser

import torch

CPU = torch.device("cpu")


def accuracy(model, x, y) -> float:
    """Percent of the rows of x a classifier assigns to their label in y."""
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def calibrated(model, x, out, bit_width=16):
    """A recurrent-flow calib quantizer of `model` writing to `out` that has seen `x`."""
    from pytorch_nndct.apis import torch_quantizer

    q = torch_quantizer("calib", model, bitwidth=bit_width, lstm=True, output_dir=str(out), device=CPU)
    with torch.no_grad():
        q.quant_model(x)
    return q


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
