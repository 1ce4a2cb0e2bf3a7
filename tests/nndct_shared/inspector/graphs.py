"""Small hand-built neutral CNN graphs (following the op registry, graph/ops) for the Inspector tests."""
from __future__ import annotations

import numpy as np

from nndct_shared.graph import Graph, Tensor


def weight(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name, data=np.zeros(shape, dtype=np.float32))


def conv(g: Graph, name: str, src: str, cin: int, cout: int, hw: int, k: int = 3,
         stride: int = 1, pad: int = 1, groups: int = 1, dilation: int = 1) -> None:
    out_hw = (hw + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    g.add(name, "conv2d", [src],
          attrs={"kernel": (k, k), "stride": (stride, stride), "padding": (pad, pad),
                 "dilation": (dilation, dilation), "groups": groups},
          params={"weight": weight(f"{name}.weight", (cout, cin // groups, k, k)),
                  "bias": weight(f"{name}.bias", (cout,))},
          shape=(1, cout, out_hw, out_hw))


def small_net() -> Graph:
    """input -> conv(3x3) -> relu -> conv(17x17) -> leaky(0.1) -> flatten -> linear -> softmax"""
    g = Graph("SmallNet")
    g.add("input_0", "input", shape=(1, 3, 20, 20))
    conv(g, "conv1", "input_0", 3, 8, 20)
    g.add("relu1", "relu", ["conv1"], shape=(1, 8, 20, 20))
    conv(g, "conv_big", "relu1", 8, 8, 20, k=17, pad=0)
    g.add("leaky", "leaky_relu", ["conv_big"], attrs={"alpha": 0.1}, shape=(1, 8, 4, 4))
    g.add("flat", "flatten", ["leaky"], attrs={"start_dim": 1, "end_dim": -1}, shape=(1, 128))
    g.add("fc", "linear", ["flat"], params={"weight": weight("fc.weight", (10, 128))},
          shape=(1, 10))
    g.add("prob", "softmax", ["fc"], attrs={"dim": 1}, shape=(1, 10))
    return g
