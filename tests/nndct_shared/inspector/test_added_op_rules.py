"""Inspector rules of the ops added for users' models: what a DPU runs (upsampling by integer
factors, zero padding of H/W, relu-like clamps, PReLU and hardsigmoid where the target has
them, permute keeping the batch first) and what goes to the CPU, with the reason; the ops with
no quantized form go to the CPU for their own reason, quantized graph or float."""
from __future__ import annotations

import numpy as np
import pytest
from graphs import conv

from nndct_shared.graph import Graph, Tensor
from nndct_shared.inspector import CPU, DPU, inspect_graph

B4096 = "DPUCZDX8G_ISA1_B4096"
NO_ALU = "DPUCAHX8L_ISA0"          # no ALU engine, activations relu / relu6 only


def _after_conv(op: str, attrs: dict, out_shape: tuple[int, ...], params: dict | None = None) -> Graph:
    """input -> conv (8 channels, 8x8) -> the op -> conv, so the op sits inside a DPU subgraph."""
    g = Graph("G")
    g.add("x", "input", shape=(1, 8, 8, 8))
    conv(g, "c1", "x", 8, 8, 8)
    g.add("op", op, ["c1"], attrs=attrs, params=params or {}, shape=out_shape)
    conv(g, "c2", "op", out_shape[1], 8, out_shape[2])
    return g


def _where(graph: Graph, target: str = B4096) -> tuple[str, str]:
    a = inspect_graph(graph, target).assignments["op"]
    return a.device, a.why


@pytest.mark.parametrize("attrs,out,expected", [
    ({"mode": "nearest", "align_corners": False, "scale": (2.0, 2.0)}, (1, 8, 16, 16),
     (DPU, "Nearest upsampling by 2 x 2 on the DPU.")),
    ({"mode": "bilinear", "align_corners": False}, (1, 8, 32, 16), (DPU, "Bilinear upsampling by 4 x 2 on the DPU.")),
    ({"mode": "bilinear", "align_corners": True}, (1, 8, 16, 16),
     (CPU, "DPU only supports bilinear resize with align_corners=False.")),
    ({"mode": "nearest", "align_corners": False}, (1, 8, 12, 12),
     (CPU, "DPU only supports resize by integer factors, got 8 x 8 -> 12 x 12.")),
])
def test_resize(attrs, out, expected):
    assert _where(_after_conv("resize", attrs, out)) == expected


@pytest.mark.parametrize("pads,mode,value,expected", [
    (((0, 0), (0, 0), (1, 1), (2, 0)), "constant", 0.0, DPU),
    (((0, 0), (0, 0), (1, 1), (1, 1)), "constant", 0.5,
     "DPU only supports zero (constant 0) padding, got mode 'constant' with value 0.5."),
    (((0, 0), (0, 0), (1, 1), (1, 1)), "reflect", 0.0,
     "DPU only supports zero (constant 0) padding, got mode 'reflect' with value 0.0."),
    (((0, 0), (2, 2), (0, 0), (0, 0)), "constant", 0.0,
     "DPU only supports padding the height and width of 4-D feature maps."),
])
def test_pad(pads, mode, value, expected):
    shape = tuple(s + a + b for s, (a, b) in zip((1, 8, 8, 8), pads))
    device, why = _where(_after_conv("pad", {"pads": pads, "mode": mode, "value": value}, shape))
    assert (device, why) == ((DPU, "Zero padding of the height and width, written by the DPU's load engine.")
                             if expected == DPU else (CPU, expected))


@pytest.mark.parametrize("low,high,expected", [
    (0.0, 6.0, (DPU, "Computed as relu6, a nonlinear function the DPU engines support.")),
    (0.0, None, (DPU, "Computed as relu, a nonlinear function the DPU engines support.")),
    (-1.0, 1.0, (CPU, "DPU only supports clamp as ReLU (min=0) or ReLU6 (min=0, max=6), got min=-1.0, "
                      "max=1.0.")),
])
def test_clamp(low, high, expected):
    assert _where(_after_conv("clamp", {"min": low, "max": high}, (1, 8, 8, 8))) == expected


def test_prelu_and_hardsigmoid_need_the_engines():
    slopes = {"weight": Tensor("w", data=np.full(8, 0.25, np.float32))}
    prelu = _after_conv("prelu", {}, (1, 8, 8, 8), slopes)
    assert _where(prelu) == (DPU, "PReLU on the alu_engine.")
    assert _where(prelu, NO_ALU) == (CPU, f"{NO_ALU} does not support prelu.")
    hsig = _after_conv("hardsigmoid", {}, (1, 8, 8, 8))
    assert _where(hsig) == (DPU, "Hard sigmoid on the alu_engine.")
    assert _where(hsig, NO_ALU) == (CPU, f"{NO_ALU} does not support hardsigmoid.")


def test_permute_keeps_the_batch_first():
    g = Graph("P")
    g.add("x", "input", shape=(1, 8, 4, 4))
    conv(g, "c1", "x", 8, 8, 4)
    g.add("op", "permute", ["c1"], attrs={"dims": (0, 2, 3, 1)}, shape=(1, 4, 4, 8))
    assert _where(g)[0] == DPU
    g.node("op").attrs["dims"] = (1, 0, 2, 3)
    assert _where(g) == (CPU, "DPU only supports permute that keeps the batch dimension first.")


def test_chunk_along_the_batch_goes_to_cpu():
    g = _after_conv("chunk", {"dim": 1, "start": 0, "end": 4}, (1, 4, 8, 8))
    assert _where(g)[0] == DPU
    g.node("op").attrs["dim"] = 0
    assert _where(g) == (CPU, "DPU does not support chunk along the batch dimension.")


@pytest.mark.parametrize("op,attrs", [("gelu", {"approximate": "none"}), ("silu", {}),
                                      ("layer_norm", {"normalized_shape": (8,), "eps": 1e-5}),
                                      ("sum", {"dims": (1,), "keepdim": True})])
@pytest.mark.parametrize("quantized", [False, True])
def test_float_ops_go_to_cpu_for_their_own_reason(op, attrs, quantized):
    shape = (1, 1, 8, 8) if op == "sum" else (1, 8, 8, 8)
    g = _after_conv(op, attrs, shape)
    if quantized:                   # a quantized graph where the float op has no fix
        for name in ("x", "c1", "c2"):
            g.node(name).attrs["fix"] = (8, 4)
    assert _where(g) == (CPU, f"DPU does not support {op}.")
