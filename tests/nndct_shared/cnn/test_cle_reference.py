"""Cross-layer equalization is the reference's (vai_q_pytorch 3.x) by default, bit for bit against
the re-statement of its rules in tests/helpers/reference_cle.py; this project's extensions
(linear pairs, LeakyReLU, sweeps to convergence) only run with `cle_extensions`."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import reference_cle as R
from nndct_shared.algorithms import bias_shrink_factor
from nndct_shared.cnn.cle import equalize_graph, find_cle_pairs
from nndct_shared.cnn_export.reference import run_reference
from nndct_shared.graph import Graph, Tensor

CONV = dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
POOL = dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False)


class _Net:
    """A hand-built float graph with weights whose channels are deliberately unbalanced."""

    def __init__(self, name: str, shape: tuple[int, ...], seed: int = 0) -> None:
        self.g = Graph(name)
        self.rng = np.random.default_rng(seed)
        self.g.add("x", "input", shape=shape)
        self.last, self.shape = "x", shape

    def _weights(self, name, shape, bias_scale=0.1, zero_channel=False):
        w = self.rng.standard_normal(shape).astype(np.float32)
        w *= np.logspace(-2, 2, shape[0], base=2.0).astype(np.float32).reshape((-1,) + (1,) * (len(shape) - 1))
        if zero_channel:
            w[1] = 0                                  # an all-zero output channel
            w[2].reshape(-1)[:3] = 0                  # and a channel with some zeros
        b = (self.rng.standard_normal(shape[0]) * bias_scale).astype(np.float32)
        return {"weight": Tensor(f"{name}.weight", data=w), "bias": Tensor(f"{name}.bias", data=b)}

    def add(self, name, op, shape, attrs=None, params=None):
        self.g.add(name, op, [self.last], attrs=attrs or {}, params=params or {}, shape=shape)
        self.last, self.shape = name, shape
        return self

    def conv(self, name, c_out, groups=1, **kw):
        c_in = self.shape[1]
        params = self._weights(name, (c_out, c_in // groups, 3, 3), **kw)
        return self.add(name, "conv2d", (self.shape[0], c_out) + self.shape[2:], dict(CONV, groups=groups), params)

    def unary(self, name, op, attrs=None):
        return self.add(name, op, self.shape, attrs)


def _chain_graph() -> Graph:
    """conv -relu-> conv -relu6-> conv -maxpool, avgpool-> conv -tanh-> conv -> flatten -> linear
    -relu-> linear, with an all-zero channel and big biases on the way."""
    n = _Net("Chain", (2, 3, 8, 8))
    n.conv("c1", 8, zero_channel=True).unary("r1", "relu")
    n.conv("c2", 8, bias_scale=30.0).unary("r2", "relu6")
    n.conv("c3", 6, bias_scale=3.0).add("p1", "max_pool2d", (2, 6, 4, 4), POOL)
    n.add("p2", "avg_pool2d", (2, 6, 2, 2), dict(POOL, count_include_pad=True))
    n.conv("c4", 4).unary("s", "tanh").conv("c5", 4)
    n.add("flat", "flatten", (2, 16), dict(start_dim=1, end_dim=3))
    n.add("fc1", "linear", (2, 12), params=n._weights("fc1", (12, 16)))
    n.unary("r3", "relu").add("fc2", "linear", (2, 5), params=n._weights("fc2", (5, 12)))
    return n.g


def _params(g: Graph, name: str) -> dict:
    node = g.node(name)
    return {"weight": node.params["weight"].data.copy(), "bias": node.params["bias"].data.copy(),
            "groups": int(node.attrs.get("groups", 1)), "transposed": node.op_type == "conv_transpose2d"}


def test_default_pairs_are_the_references():
    g = _chain_graph()
    pairs = find_cle_pairs(g)
    # conv pairs through relu / relu6 / pooling; tanh ends a chain, linear layers never pair
    assert [(p.first, p.second, p.between) for p in pairs] == [
        ("c1", "c2", ("r1",)), ("c2", "c3", ("r2",)), ("c3", "c4", ("p1", "p2"))]
    extended = find_cle_pairs(g, extensions=True)
    assert [(p.first, p.second) for p in extended] == [("c1", "c2"), ("c2", "c3"), ("c3", "c4"),
                                                       ("fc1", "fc2")]


def test_default_cle_equals_the_restated_reference_bit_for_bit():
    g = _chain_graph()
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    before = run_reference(g, {"x": x})
    layers = [_params(g, n) for n in ("c1", "c2", "c3", "c4")]
    fc = [g.node(n).params["weight"].data.copy() for n in ("fc1", "fc2")]
    clips = R.equalize_chain(layers, clips={1: 6.0})
    twice = [dict(layer) for layer in layers]
    R.equalize_chain(twice, clips={1: clips[1]})
    assert not np.array_equal(twice[0]["weight"], layers[0]["weight"])  # so one pass is a choice
    equalize_graph(g)
    for name, want in zip(("c1", "c2", "c3", "c4"), layers):
        node = g.node(name)
        np.testing.assert_array_equal(node.params["weight"].data, want["weight"], err_msg=name)
        np.testing.assert_array_equal(node.params["bias"].data, want["bias"], err_msg=name)
    assert np.array_equal(np.asarray(g.node("r2").attrs["clip"], np.float32), clips[1])
    assert "clip" not in g.node("r1").attrs
    for name, w in zip(("fc1", "fc2"), fc):            # one pass, no linear pairs: untouched
        np.testing.assert_array_equal(g.node(name).params["weight"].data, w)
    # the float function is kept (ReLU6's clip scaled with its channel)
    after = run_reference(g, {"x": x})
    np.testing.assert_allclose(after["fc2"], before["fc2"], rtol=1e-4, atol=1e-4)
    # the all-zero channel of c1: its bias is left out of the range, the weights stay 0
    assert not g.node("c1").params["weight"].data[1].any()


def test_the_half_rule_and_one_pass():
    """s = 1 where r_A + r_B < 0.5."""
    n = _Net("Small", (1, 2, 4, 4), seed=3)
    n.conv("a", 4).unary("r", "relu").conv("b", 4).unary("r2", "relu").conv("c", 2)
    for name in ("a", "b", "c"):
        n.g.node(name).params["weight"].data *= np.float32(0.002)
        n.g.node(name).params["bias"].data *= np.float32(0.002)
    n.g.node("a").params["weight"].data[0] *= np.float32(1000)  # only channel 0 is large
    start = n.g.node("a").params["weight"].data.copy()
    layers = [_params(n.g, k) for k in ("a", "b", "c")]
    R.equalize_chain(layers)
    equalize_graph(n.g)
    a = n.g.node("a").params["weight"].data
    np.testing.assert_array_equal(a, layers[0]["weight"])
    assert not np.array_equal(a[0], start[0])          # r_A + r_B >= 0.5: scaled
    np.testing.assert_array_equal(a[1:], start[1:])    # the small channels keep s = 1


@pytest.mark.parametrize("groups", ["depthwise", "grouped"])
def test_depthwise_and_grouped_convs(groups):
    n = _Net("Dw", (1, 4, 6, 6), seed=5)
    n.conv("c1", 8).unary("r1", "relu")
    n.conv("dw", 8, groups=8 if groups == "depthwise" else 2).unary("r2", "relu6").conv("pw", 6)
    layers = [_params(n.g, k) for k in ("c1", "dw", "pw")]
    clips = R.equalize_chain(layers, clips={1: 6.0})
    pairs = equalize_graph(n.g)
    assert [(p.first, p.second) for p in pairs] == [("c1", "dw"), ("dw", "pw")]
    for name, want in zip(("c1", "dw", "pw"), layers):
        np.testing.assert_array_equal(n.g.node(name).params["weight"].data, want["weight"], err_msg=name)
        np.testing.assert_array_equal(n.g.node(name).params["bias"].data, want["bias"], err_msg=name)
    assert np.array_equal(np.asarray(n.g.node("r2").attrs["clip"], np.float32), clips[1])


def test_transposed_conv_takes_part():
    n = _Net("Up", (1, 3, 4, 4), seed=7)
    params = n._weights("up", (3, 5, 2, 2))          # [I, O, kh, kw]
    params["bias"] = Tensor("up.bias", data=np.random.default_rng(7).standard_normal(5).astype(np.float32))
    n.add("up", "conv_transpose2d", (1, 5, 8, 8), dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                                                     dilation=(1, 1), groups=1, output_padding=(0, 0)), params)
    n.unary("r", "relu").conv("c", 4)
    layers = [_params(n.g, k) for k in ("up", "c")]
    R.equalize_chain(layers)
    assert [(p.first, p.second) for p in equalize_graph(n.g)] == [("up", "c")]
    for name, want in zip(("up", "c"), layers):
        np.testing.assert_array_equal(n.g.node(name).params["weight"].data, want["weight"], err_msg=name)


def test_a_second_reader_or_a_leaky_relu_ends_the_chain():
    n = _Net("Fork", (1, 2, 4, 4), seed=9)
    n.conv("a", 4).unary("r", "relu").conv("b", 4)
    n.g.add("side", "relu", ["r"], shape=(1, 4, 4, 4))     # r has two readers
    n2 = _Net("Leaky", (1, 2, 4, 4), seed=9)
    n2.conv("a", 4).unary("l", "leaky_relu", {"alpha": 0.1015625}).conv("b", 4)
    assert find_cle_pairs(n.g) == [] and find_cle_pairs(n2.g) == []
    assert [(p.first, p.second) for p in find_cle_pairs(n2.g, extensions=True)] == [("a", "b")]


def test_extensions_sweep_linear_pairs_to_convergence():
    g = _chain_graph()
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    before = run_reference(g, {"x": x})
    fc1 = g.node("fc1").params["weight"].data.copy()
    pairs = equalize_graph(g, extensions=True)
    assert not np.array_equal(g.node("fc1").params["weight"].data, fc1)
    for pair in pairs:                                  # converged: one more sweep changes ~nothing
        a, b = _params(g, pair.first), _params(g, pair.second)
        scales = R.pair_scales(a["weight"], a["bias"], b["weight"], b["groups"])
        assert np.abs(np.log(scales)).max() < 1e-3, pair
    after = run_reference(g, {"x": x})
    np.testing.assert_allclose(after["fc2"], before["fc2"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("bias_scale", "weight_scale", "spike", "expected"), [
    (0.1, 1.0, False, 2),      # small bias (< 10, < 20 x the largest weight), small ratios
    (0.1, 1e-4, True, 5),      # small bias, but the median ratio > 100
    (0.1, 1e-4, False, 20),    # the bias is > 20 x every weight: a large bias, median > 30
    (20.0, 1.0, False, 10),    # large bias, median ratio in (15, 30]
    (30.0, 0.5, False, 20),    # median > 30
    (12.0, 1.0, False, 5),     # large bias, small ratios
])
def test_shrink_factor_branches(bias_scale, weight_scale, spike, expected):
    rng = np.random.default_rng(11)
    rows = (rng.uniform(0.5, 1.5, (16, 27)) * weight_scale).astype(np.float32)
    if spike:
        rows[0, 0] = 1.0
    bias = (np.full(16, bias_scale) * rng.uniform(0.8, 1.2, 16)).astype(np.float32)
    rows[3] = 0
    rows[4, :5] = 0
    shrink, kept = bias_shrink_factor(rows, bias)
    want_shrink, want_kept = R.shrink_factor(rows, bias)
    assert shrink == want_shrink == expected
    np.testing.assert_array_equal(kept, want_kept)
    assert kept[3] == 0 and kept[4] == bias[4]
