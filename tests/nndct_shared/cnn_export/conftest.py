"""Small real CNN graphs for the exporter tests, built by hand with NumPy weights.

Weights are seeded random (the exporters' exactness is under test, not accuracy); the fix facts
come from real data: params get the diffs fix position (std round, as the reference does for
params) and are stored quantized, then every activation gets the diffs fix position of its float
values on sklearn's digits images (8x8, upsampled or not).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from nndct_shared.cnn_export.reference import run_node, run_reference
from nndct_shared.graph import Graph, Tensor
from nndct_shared.kernels import diffs_fix_pos, fix_neuron

BW = 8


class NetBuilder:
    """Adds nodes with seeded params and infers output shapes by running each op once."""

    def __init__(self, name: str, input_shape: tuple[int, ...], seed: int = 0) -> None:
        self.graph = Graph(name)
        self.rng = np.random.default_rng(seed)
        self.values: dict[str, np.ndarray] = {}
        self.graph.add("input_0", "input", shape=(1,) + tuple(input_shape[1:]))
        self.values["input_0"] = self.rng.standard_normal((1,) + tuple(input_shape[1:])) \
            .astype(np.float32)
        self.count = 0

    def param(self, node: str, role: str, shape: tuple[int, ...], scale: float = 0.3) -> Tensor:
        data = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        return Tensor(f"{node}.{role}", data=data)

    def add(self, op: str, inputs: list[str], attrs: dict | None = None,
            params: dict[str, Tensor] | None = None, name: str | None = None,
            out_shape: tuple[int, ...] | None = None) -> str:
        self.count += 1
        name = name or f"{self.graph.name}::{op}_{self.count}"
        node = self.graph.add(name, op, inputs, attrs=attrs or {}, params=params or {})
        out = run_node(node, [self.values[t] for t in inputs], out_shape)
        self.values[name] = out
        self.graph.tensors[name] = Tensor(name, tuple(out.shape))
        return name

    def conv2d(self, x: str, c_out: int, k: int = 3, stride: int = 1, pad: int = 1,
               groups: int = 1, dilation: int = 1, bias: bool = True) -> str:
        c_in = self.values[x].shape[1]
        name = f"{self.graph.name}::conv_{self.count + 1}"
        params = {"weight": self.param(name, "weight", (c_out, c_in // groups, k, k))}
        if bias:
            params["bias"] = self.param(name, "bias", (c_out,), 0.1)
        attrs = dict(kernel=(k, k), stride=(stride, stride), padding=(pad, pad),
                     dilation=(dilation, dilation), groups=groups)
        return self.add("conv2d", [x], attrs, params, name)


def quantize(graph: Graph, calib: np.ndarray, quantize_outputs: Callable[[str], bool] | None
             = None, quantize_params: Callable[[str], bool] | None = None) -> Graph:
    """Quantize params in place (diffs, std round) and give every node (or those selected) the
    diffs fix position (DPU round) of its output on `calib`; `quantize_params` selects the
    nodes whose params are quantized (default: all)."""
    for node in graph.nodes:
        if quantize_params is not None and not quantize_params(node.name):
            continue
        for tensor in node.params.values():
            fp = diffs_fix_pos(tensor.data, BW, method=3)
            tensor.data = fix_neuron(np.ascontiguousarray(tensor.data), BW, fp, 3)
            tensor.attrs["fix"] = (BW, fp)
    values = run_reference(graph, {"input_0": calib})
    for node in graph.nodes:
        if quantize_outputs is None or quantize_outputs(node.name):
            node.attrs["fix"] = (BW, diffs_fix_pos(values[node.outputs[0]], BW, method=2))
    return graph


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """sklearn digits scaled to [0, 1]: (1797, 1, 8, 8) float32."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0
    return images[:, None, :, :]


def lenet(digits: np.ndarray) -> Graph:
    """conv-relu-maxpool-conv-relu-avgpool-flatten-linear-relu-linear-softmax on 8x8 digits."""
    b = NetBuilder("LeNet", (1, 1, 8, 8), seed=1)
    x = b.conv2d("input_0", 6, k=3, pad=1)
    x = b.add("relu", [x])
    x = b.add("max_pool2d", [x], dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0),
                                      ceil_mode=False))
    x = b.conv2d(x, 8, k=3, pad=1)
    x = b.add("relu6", [x])
    x = b.add("avg_pool2d", [x], dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                                      ceil_mode=True, count_include_pad=False,
                                      dpu_scale=9.0 * 7.0 / 64.0))
    x = b.add("flatten", [x], dict(start_dim=1, end_dim=-1))
    fc = f"{b.graph.name}::fc1"
    x = b.add("linear", [x], params={"weight": b.param(fc, "weight", (16, 128), 0.1),
                                     "bias": b.param(fc, "bias", (16,), 0.1)}, name=fc)
    x = b.add("relu", [x])
    fc2 = f"{b.graph.name}::fc2"
    x = b.add("linear", [x], params={"weight": b.param(fc2, "weight", (10, 16)),
                                     "bias": b.param(fc2, "bias", (10,))}, name=fc2)
    b.add("softmax", [x], dict(dim=1))
    return quantize(b.graph, digits[:200])


def mixed_net(digits: np.ndarray) -> Graph:
    """Depthwise (multiplier 2) and grouped convs, a transposed conv, a residual add with a
    scalar, concat, BatchNorm as scale, leaky relu, hardswish, sigmoid, adaptive avg pools,
    mean, a reshape of a 4-D tensor back to 4-D, a flatten(2) to rank 3."""
    b = NetBuilder("Mixed", (1, 1, 8, 8), seed=2)
    stem = b.conv2d("input_0", 4, k=3, pad=1)
    stem = b.add("leaky_relu", [stem], dict(alpha=0.1015625))
    dw = b.conv2d(stem, 8, k=3, pad=1, groups=4)                      # depthwise, multiplier 2
    grp = b.conv2d(dw, 8, k=1, pad=0, groups=2)                        # grouped 1x1
    res = b.add("add", [grp, dw])                                      # residual add
    res = b.add("mul", [res], dict(other_index=1),
                {"other": Tensor("Mixed::half", data=np.array(0.5, np.float32))})
    name = "Mixed::bn"
    bn = b.add("scale", [res], dict(axis=1), {
        "weight": Tensor(f"{name}.weight", data=(1 + 0.2 * b.rng.standard_normal(8))
                         .astype(np.float32)),
        "bias": Tensor(f"{name}.bias", data=(0.1 * b.rng.standard_normal(8)).astype(np.float32))},
        name=name)
    hs = b.add("hardswish", [bn])
    down = b.conv2d(hs, 8, k=3, stride=2, pad=1)                       # 8x8 -> 4x4
    up_name = "Mixed::up"
    up = b.add("conv_transpose2d", [down], dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1),
                                                output_padding=(1, 1), dilation=(1, 1),
                                                groups=1),
               {"weight": b.param(up_name, "weight", (8, 4, 3, 3)),
                "bias": b.param(up_name, "bias", (4,), 0.1)}, name=up_name)
    cat = b.add("concat", [up, stem], dict(axis=1))                    # 8 channels
    sig = b.add("sigmoid", [cat])
    sub = b.add("sub", [sig], dict(other_index=0),
                {"other": Tensor("Mixed::bias_map", data=(0.1 * b.rng.standard_normal(
                    (8, 1, 1))).astype(np.float32))})
    ap = b.add("adaptive_avg_pool2d", [sub], dict(output_size=(2, 2), dpu_scale=1.0))
    r = b.add("reshape", [ap], dict(shape=(1, 4, 2, 4)))               # 4-D -> 4-D reorder
    fl = b.add("flatten", [r], dict(start_dim=2, end_dim=3))            # rank 3 [1, 4, 8]
    m = b.add("mean", [fl], dict(dims=(2,), keepdim=False))             # [1, 4]
    g = b.add("adaptive_avg_pool2d", [sub], dict(output_size=(1, 1)))   # global
    g = b.add("flatten", [g], dict(start_dim=1, end_dim=-1))            # [1, 8]
    t = b.add("tanh", [g])
    b.add("concat", [m, t], dict(axis=-1))                             # [1, 12]
    return quantize(b.graph, digits[:100])


def conv1d_net(digits: np.ndarray) -> Graph:
    """A 1-D CNN over the digit rows as a sequence: [N, 8 channels, 8 steps]."""
    b = NetBuilder("Seq", (1, 8, 8), seed=3)
    name = "Seq::c1"
    x = b.add("conv1d", ["input_0"], dict(kernel=(3,), stride=(1,), padding=(1,), dilation=(1,),
                                          groups=1),
              {"weight": b.param(name, "weight", (6, 8, 3)),
               "bias": b.param(name, "bias", (6,), 0.1)}, name=name)
    x = b.add("relu", [x])
    mp = b.add("max_pool1d", [x], dict(kernel=(3,), stride=(2,), padding=(0,), ceil_mode=True))
    ap = b.add("avg_pool1d", [x], dict(kernel=(3,), stride=(2,), padding=(1,), ceil_mode=False,
                                       count_include_pad=True))
    ad = b.add("adaptive_avg_pool1d", [x], dict(output_size=(3,)))
    cat = b.add("concat", [mp, ap], dict(axis=1))                      # [1, 12, 4]
    sm = b.add("softmax", [cat], dict(dim=1))
    fl = b.add("flatten", [sm], dict(start_dim=1, end_dim=-1))
    fl2 = b.add("flatten", [ad], dict(start_dim=1, end_dim=-1))
    fc = "Seq::fc"
    y = b.add("linear", [fl], params={"weight": b.param(fc, "weight", (5, 48), 0.2)}, name=fc)
    fc2 = "Seq::fc2"
    y2 = b.add("linear", [fl2], params={"weight": b.param(fc2, "weight", (5, 18), 0.2),
                                        "bias": b.param(fc2, "bias", (5,), 0.1)}, name=fc2)
    b.add("add", [y, y2])
    return quantize(b.graph, digits[:100, 0])


def adaptive_max_net(digits: np.ndarray, hw: int) -> Graph:
    """conv -> adaptive_max_pool2d (2, 2) -> flatten -> adaptive_max_pool1d (2,) on the top-left
    hw x hw of the digits (4: uniform windows; 5: windows of different sizes)."""
    b = NetBuilder("AMax", (1, 1, hw, hw), seed=5)
    c = b.conv2d("input_0", 3)
    p = b.add("adaptive_max_pool2d", [c], dict(output_size=(2, 2)))
    f = b.add("flatten", [p], dict(start_dim=2, end_dim=3))            # [1, 3, 4]
    b.add("adaptive_max_pool1d", [f], dict(output_size=(2,)))
    return quantize(b.graph, digits[:100, :, :hw, :hw])


def coverage_net(digits: np.ndarray) -> Graph:
    """The ops added for users' models: prelu, clamp (relu6-like and general), hardsigmoid,
    nearest / bilinear resize (scale and size forms, align_corners both ways), constant and
    reflect pad, chunk, split, permute, transpose, unsqueeze, matmul of two feature maps and
    with a constant, and the float ops (group / instance / layer norm, elu, gelu both forms,
    silu, sum, max) left unquantized, as the session leaves them: float params, no output fix
    unless a quantized op reads them."""
    from nndct_shared.graph.ops import get_op

    b = NetBuilder("Cover", (1, 1, 8, 8), seed=6)
    c = b.conv2d("input_0", 4, k=3, pad=1)
    pr = b.add("prelu", [c], params={"weight": Tensor("Cover::prelu.weight", data=np.array(
        [0.25, 0.1, 0.5, 0.05], np.float32))})
    r6 = b.add("clamp", [pr], dict(min=0.0, max=6.0))                       # XIR relu6
    cl = b.add("clamp", [pr], dict(min=None, max=1.5))                      # XIR clamp
    hs = b.add("hardsigmoid", [cl])
    near = b.add("resize", [hs], dict(mode="nearest", align_corners=False, scale=(2.0, 2.0)))
    bil = b.add("resize", [r6], dict(mode="bilinear", align_corners=False), out_shape=(1, 4, 16, 16))
    corner = b.add("resize", [r6], dict(mode="bilinear", align_corners=True), out_shape=(1, 4, 16, 16))
    s = b.add("add", [b.add("add", [near, bil]), corner])                   # 4 x 16 x 16
    pd = b.add("pad", [s], dict(pads=((0, 0), (0, 0), (1, 1), (1, 1)), mode="constant", value=0.0))
    pr2 = b.add("pad", [pd], dict(pads=((0, 0), (0, 0), (0, 2), (2, 0)), mode="reflect", value=0.0))
    pool = b.add("max_pool2d", [pr2], dict(kernel=(5, 5), stride=(5, 5), padding=(0, 0), ceil_mode=False))
    gn = b.add("group_norm", [pool], dict(num_groups=2, eps=1e-5), {
        "weight": Tensor("Cover::gn.weight", data=np.linspace(0.5, 1.5, 4).astype(np.float32)),
        "bias": Tensor("Cover::gn.bias", data=np.linspace(-0.2, 0.2, 4).astype(np.float32))})
    inn = b.add("instance_norm", [gn], dict(eps=1e-3), {"weight": Tensor("Cover::in.weight", data=np.full(
        4, 0.8, np.float32))})
    el = b.add("elu", [inn], dict(alpha=0.8))                               # 4 x 4 x 4
    ch_a = b.add("chunk", [el], dict(dim=1, start=0, end=2))
    ch_b = b.add("chunk", [el], dict(dim=1, start=2, end=4))
    m = b.add("mul", [ch_a, ch_b])                                          # 2 x 4 x 4
    pe = b.add("permute", [m], dict(dims=(0, 2, 3, 1)))                     # 4 x 4 x 2
    seq = b.add("reshape", [pe], dict(shape=(1, 16, 2)))
    tr = b.add("transpose", [seq], dict(dims=(0, 2, 1)))                    # 2 x 16
    mm = b.add("matmul", [tr, seq])                                         # 2 x 2
    ln = b.add("layer_norm", [mm], dict(normalized_shape=(2,), eps=1e-5), {
        "weight": Tensor("Cover::ln.weight", data=np.array([1.2, 0.7], np.float32)),
        "bias": Tensor("Cover::ln.bias", data=np.array([0.1, -0.1], np.float32))})
    ge = b.add("gelu", [ln], dict(approximate="none"))
    si = b.add("silu", [ge])
    un = b.add("unsqueeze", [si], dict(dim=1))                              # 1 x 2 x 2
    mx = b.add("max", [un], dict(dims=(3,), keepdim=True))                  # 1 x 2 x 1
    fl = b.add("flatten", [mx], dict(start_dim=1, end_dim=-1))              # 2
    w = Tensor("Cover::proj", data=(b.rng.standard_normal((2, 3)) * 0.5).astype(np.float32))
    proj = b.add("matmul", [fl], dict(other_index=1), {"other": w})        # 3
    sp = b.add("split", [el], dict(dim=3, start=1, end=3))                  # 4 x 4 x 2
    sm = b.add("sum", [sp], dict(dims=(3,), keepdim=False))                 # 4 x 4
    gt = b.add("gelu", [sm], dict(approximate="tanh"))
    b.add("concat", [proj, b.add("flatten", [gt], dict(start_dim=1, end_dim=-1))], dict(axis=1))
    graph = b.graph
    floats = {n.name for n in graph.nodes if not get_op(n.op_type).quantizable}

    def quantized_output(name: str) -> bool:
        return name not in floats or any(c.name not in floats for c in graph.successors(name))

    return quantize(graph, digits[:100], quantized_output, lambda name: name not in floats)


@pytest.fixture(scope="session")
def adaptive_max_graphs(digits) -> dict[int, Graph]:
    return {hw: adaptive_max_net(digits, hw) for hw in (4, 5)}


@pytest.fixture(scope="session")
def lenet_graph(digits) -> Graph:
    return lenet(digits)


@pytest.fixture(scope="session")
def mixed_graph(digits) -> Graph:
    return mixed_net(digits)


@pytest.fixture(scope="session")
def conv1d_graph(digits) -> Graph:
    return conv1d_net(digits)


@pytest.fixture(scope="session")
def coverage_graph(digits) -> Graph:
    return coverage_net(digits)


@pytest.fixture(scope="session")
def nets(lenet_graph, mixed_graph, conv1d_graph, coverage_graph) -> dict[str, Graph]:
    return {"lenet": lenet_graph, "mixed": mixed_graph, "conv1d": conv1d_graph, "coverage": coverage_graph}


@pytest.fixture(scope="session")
def net_inputs(digits) -> dict[str, np.ndarray]:
    """Per net, a batch of real images in its input layout."""
    return {"lenet": digits[200:264], "mixed": digits[200:232], "conv1d": digits[200:264, 0],
            "coverage": digits[200:232]}
