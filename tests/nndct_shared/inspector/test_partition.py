"""DPU/CPU assignment rules and subgraph partitioning on hand-built neutral graphs."""
from __future__ import annotations

import numpy as np
import pytest
from graphs import conv, small_net, weight

from nndct_shared.graph import Graph, Tensor
from nndct_shared.inspector import CPU, DPU, inspect_graph

B4096 = "DPUCZDX8G_ISA1_B4096"


def one_conv(**kw) -> Graph:
    g = Graph("OneConv")
    g.add("x", "input", shape=(1, kw.get("cin", 16), 32, 32))
    conv(g, "conv", "x", kw.pop("cin", 16), kw.pop("cout", 16), 32, **kw)
    g.add("out", "relu", ["conv"], shape=g.tensor("conv").shape)
    return g


def reason(graph: Graph, target: str, node: str) -> tuple[str, str]:
    a = inspect_graph(graph, target).assignments[node]
    return a.device, a.reason


def test_small_net_assignment_and_reasons():
    result = inspect_graph(small_net(), B4096)
    got = {n: (a.device, a.reason) for n, a in result.assignments.items()}
    assert got == {
        "input_0": (DPU, ""),
        "conv1": (DPU, ""),
        "relu1": (DPU, ""),
        "conv_big": (CPU, "'kernel'(17 x 17) is not in DPU supported range([1-16])."),
        "leaky": (CPU, "Its alpha is 0.1, but DPU only supports 0.1015625."),
        "flat": (CPU, "The input of flatten is not on DPU."),
        "fc": (DPU, ""),
        "prob": (CPU, "DPU does not support softmax."),
    }
    assert [(s.name, s.device, s.nodes) for s in result.subgraphs] == [
        ("subgraph_dpu_0", DPU, ("input_0", "conv1", "relu1")),
        ("subgraph_cpu_0", CPU, ("conv_big", "leaky", "flat")),
        ("subgraph_dpu_1", DPU, ("fc",)),
        ("subgraph_cpu_1", CPU, ("prob",)),
    ]


def test_stride_limit_differs_per_target():
    g = one_conv(k=3, stride=5)
    assert reason(g, B4096, "conv") == (DPU, "")                      # stride 1-8
    assert reason(g, "DPUCAHX8L_ISA0", "conv") == (
        CPU, "'stride'(5 x 5) is not in DPU supported range([1-4]).")
    assert reason(one_conv(k=3, stride=9), B4096, "conv") == (
        CPU, "'stride'(9 x 9) is not in DPU supported range([1-8]).")


def test_weight_buffer_padding_and_channel_limits():
    # 16 x 16 kernel over 256 input channels: 16*16*ceil(256/16)*ceil(16/16) = 4096 > 2048
    dev, why = reason(one_conv(k=16, pad=0, cin=256), B4096, "conv")
    assert dev == CPU and why.endswith("'kernel_h * kernel_w * ceil(input_channel / bank_width) "
                                       "* ceil(output_channel_parallel / bank_num)'(4096) must "
                                       "be less than or equal to 2048.")
    assert reason(one_conv(k=1, pad=3), B4096, "conv") == (
        CPU, "DPU only supports 'pad_left'/'pad_right'(3) less than or equal to 'kernel_w'(1).")
    assert reason(one_conv(k=1, pad=0, cin=16, cout=5000), B4096, "conv") == (
        CPU, "DPU only supports 'output_channel'(5000) less than or equal to 4096 (256 * 16).")
    assert reason(one_conv(k=3, cin=16, cout=16, groups=4), B4096, "conv")[0] == CPU


def test_depthwise_needs_an_engine_and_its_limits():
    dw3 = one_conv(k=3, groups=16)
    dw5 = one_conv(k=5, pad=2, groups=16)
    assert reason(dw5, B4096, "conv") == (DPU, "")                    # ALU kernel 1-256
    assert reason(dw3, "DPUCAHX8H_ISA2", "conv") == (
        CPU, "DPUCAHX8H_ISA2 does not have depthwise-conv-engine.")
    assert reason(dw3, "DPUCAHX8L_ISA0", "conv") == (DPU, "")
    assert reason(dw5, "DPUCAHX8L_ISA0", "conv") == (
        CPU, "'kernel'(5 x 5) is not in DPU supported range([3]).")
    assert reason(one_conv(k=3, pad=16, groups=16), B4096, "conv") == (
        CPU, "'pad_left'(16) is not in DPU supported range([0-15]).")


def test_activations_per_target():
    g = Graph("Act")
    g.add("x", "input", shape=(1, 8, 4, 4))
    g.add("ok", "leaky_relu", ["x"], attrs={"alpha": 26 / 256}, shape=(1, 8, 4, 4))
    g.add("r6", "relu6", ["ok"], shape=(1, 8, 4, 4))
    g.add("hs", "hardswish", ["r6"], shape=(1, 8, 4, 4))
    g.add("sg", "sigmoid", ["hs"], shape=(1, 8, 4, 4))
    on = {t: {n: a.device for n, a in inspect_graph(g, t).assignments.items()}
          for t in (B4096, "DPUCAHX8L_ISA0", "DPUCADF8H_ISA0")}
    assert on[B4096] == {"x": DPU, "ok": DPU, "r6": DPU, "hs": DPU, "sg": CPU}
    assert on["DPUCAHX8L_ISA0"] == {"x": CPU, "ok": CPU, "r6": DPU, "hs": CPU, "sg": CPU}
    assert on["DPUCADF8H_ISA0"] == {"x": DPU, "ok": DPU, "r6": CPU, "hs": CPU, "sg": CPU}
    assert reason(g, "DPUCAHX8L_ISA0", "ok") == (CPU, "DPUCAHX8L_ISA0 does not support leaky_relu.")
    assert reason(g, "DPUCAHX8L_ISA0", "x") == (CPU, "All the children nodes are assigned to CPU.")
    assert reason(g, B4096, "sg") == (CPU, "DPU does not support sigmoid.")


def test_unsupported_ops_and_softmax_on_the_alu():
    g = Graph("Ops")
    g.add("x", "input", shape=(1, 10))
    g.add("fc", "linear", ["x"], params={"weight": weight("fc.w", (10, 10))}, shape=(1, 10))
    g.add("my", "custom", ["fc"], attrs={"op_name": "MySwish"}, shape=(1, 10))
    g.add("sm", "softmax", ["fc"], attrs={"dim": 1}, shape=(1, 10))
    assert reason(g, B4096, "my") == (CPU, "custom op 'MySwish' can't be converted to XIR.")
    assert reason(g, B4096, "sm") == (CPU, "DPU does not support softmax.")
    assert reason(g, "DPUCV2DX8G_ISA0_C16M4B1", "sm") == (DPU, "")


def test_pooling_eltwise_concat_and_rank_limits():
    g = Graph("Mix")
    g.add("x", "input", shape=(1, 16, 8, 8))
    g.add("mp", "max_pool2d", ["x"], attrs={"kernel": (4, 2), "stride": (2, 2),
                                             "padding": (0, 0), "ceil_mode": False},
          shape=(1, 16, 3, 4))
    g.add("gap", "adaptive_avg_pool2d", ["x"], attrs={"output_size": (1, 1)},
          shape=(1, 16, 1, 1))
    g.add("sum", "add", ["gap", "gap"], shape=(1, 16, 1, 1))
    g.add("prod", "mul", ["sum", "sum"], shape=(1, 16, 1, 1))
    g.add("cat", "concat", ["prod", "sum"], attrs={"axis": 1}, shape=(1, 32, 1, 1))
    g.add("r5", "reshape", ["cat"], attrs={"shape": (1, 2, 2, 2, 4)}, shape=(1, 2, 2, 2, 4))
    b = {n: (a.device, a.reason) for n, a in inspect_graph(g, B4096).assignments.items()}
    assert b["mp"] == b["gap"] == b["sum"] == b["prod"] == b["cat"] == (DPU, "")
    assert b["r5"] == (CPU, "DPU only supports tensors of up to 4 dimensions, its output has 5.")
    h = {n: (a.device, a.reason) for n, a in inspect_graph(g, "DPUCAHX8H_ISA2").assignments.items()}
    assert h["gap"] == (DPU, "")                                       # 8x8 kernel in 1-8
    assert h["prod"] == (CPU, "DPUCAHX8H_ISA2 does not support eltwise MUL.")
    # the concat still has one DPU input (sum)
    assert h["cat"] == (DPU, "")
    l = {n: (a.device, a.reason) for n, a in inspect_graph(g, "DPUCAHX8L_ISA0").assignments.items()}
    assert l["mp"] == (CPU, "'kernel'(4 x 2) is not in DPU supported range([2,3,5,7,8]).")


def test_adaptive_max_pool2d_is_a_max_pool_with_uniform_windows():
    g = Graph("AMax")
    g.add("x", "input", shape=(1, 16, 8, 8))
    g.add("amp", "adaptive_max_pool2d", ["x"], attrs={"output_size": (2, 2)}, shape=(1, 16, 2, 2))
    g.add("odd", "adaptive_max_pool2d", ["x"], attrs={"output_size": (3, 3)}, shape=(1, 16, 3, 3))
    b = {n: (a.device, a.reason) for n, a in inspect_graph(g, B4096).assignments.items()}
    assert b["amp"] == (DPU, "")
    assert b["odd"] == (CPU, "DPU only supports adaptive_max_pool2d whose input size [8, 8] is a "
                        "multiple of its output size [3, 3].")
    # the max-pool limits apply: kernel 4 x 4 is outside DPUCAHX8L's max kernel range
    l = {n: (a.device, a.reason) for n, a in inspect_graph(g, "DPUCAHX8L_ISA0").assignments.items()}
    assert l["amp"] == (CPU, "'kernel'(4 x 4) is not in DPU supported range([2,3,5,7,8]).")


def test_concat_of_cpu_inputs_and_reshape_batch_change():
    g = Graph("Cat")
    g.add("x", "input", shape=(2, 4, 2, 2))
    g.add("s1", "sigmoid", ["x"], shape=(2, 4, 2, 2))
    g.add("t1", "tanh", ["x"], shape=(2, 4, 2, 2))
    g.add("cat", "concat", ["s1", "t1"], attrs={"axis": 1}, shape=(2, 8, 2, 2))
    g.add("r", "relu", ["x"], shape=(2, 4, 2, 2))
    g.add("rs", "reshape", ["r"], attrs={"shape": (1, -1)}, shape=(1, 32))
    g.add("sm", "softmax", ["rs"], attrs={"dim": 1}, shape=(1, 32))
    assert reason(g, B4096, "cat") == (CPU, "All inputs of concat are on CPU.")
    assert reason(g, B4096, "rs") == (CPU, "First dimension is changed.")
    assert reason(g, "DPUCADF8H_ISA0", "rs") == (CPU, "DPUCADF8H_ISA0 does not support reshape.")


def test_quantized_graph_rules_bit_width_and_float_nodes():
    g = one_conv(k=3)
    g.node("x").attrs["fix"] = (8, 5)
    g.node("conv").attrs["fix"] = (8, 3)
    g.node("conv").params["weight"].attrs["fix"] = (16, 12)
    # relu has no fix: outside the quantized part
    result = inspect_graph(g, B4096)
    assert result.assignments["conv"].reason == (
        "Its weight is quantized to 16 bits, but DPU only supports 8-bit quantization.")
    assert result.assignments["out"].reason == "Not in quantizable part."
    assert result.assignments["x"].reason == "All the children nodes are assigned to CPU."
    assert inspect_graph(g, B4096, quantized=False).assignments["out"].device == DPU


def test_transposed_conv_rules():
    g = Graph("Up")
    g.add("x", "input", shape=(1, 8, 4, 4))
    for name, k, s, op in (("up", 4, 2, 0), ("bad", 4, 2, 1), ("big", 40, 2, 0)):
        g.add(name, "conv_transpose2d", ["x"],
              attrs={"kernel": (k, k), "stride": (s, s), "padding": (1, 1),
                     "dilation": (1, 1), "groups": 1, "output_padding": (op, op)},
              params={"weight": Tensor(f"{name}.w", data=np.zeros((8, 8, k, k), np.float32))},
              shape=(1, 8, 8, 8))
    r = {n: (a.device, a.reason) for n, a in inspect_graph(g, B4096).assignments.items()}
    assert r["up"] == (DPU, "")
    assert r["bad"] == (CPU, "DPU does not support output_padding.")
    assert r["big"] == (CPU, "'kernel / stride'(40 / 2) is not in DPU supported range([1-16]).")


def test_unknown_op_type_goes_to_cpu():
    g = Graph("Unknown")
    g.add("x", "input", shape=(1, 4))
    g.add("erf", "erf", ["x"], shape=(1, 4))
    assert reason(g, B4096, "erf") == (CPU, "erf can't be converted to XIR.")


@pytest.mark.parametrize("op", ["conv1d", "max_pool1d"])
def test_one_dimensional_ops_run_on_cpu(op):
    g = Graph("OneD")
    g.add("x", "input", shape=(1, 4, 16))
    attrs = {"kernel": (3,), "stride": (1,), "padding": (1,), "dilation": (1,), "groups": 1,
             "ceil_mode": False}
    g.add("op", op, ["x"], attrs=attrs, shape=(1, 4, 16))
    assert reason(g, B4096, "op") == (
        CPU, f"DPU does not support {op} (only 2-D convolution and pooling).")


def test_quantized_graph_keeps_fused_producers_and_shape_ops_in_the_quantized_part():
    """An exported graph: the conv's fix sits after its fused relu, flatten has none of its own;
    both are in the quantized part. A node with no fix of any kind is float."""
    g = Graph("Exported")
    g.add("x", "input", shape=(1, 4, 8, 8), attrs={"fix": (8, 6)})
    conv(g, "conv", "x", 4, 8, 8)
    g.node("conv").params["weight"].attrs["fix"] = (8, 7)
    g.add("relu", "relu", ["conv"], shape=(1, 8, 8, 8), attrs={"fix": (8, 4)})
    g.add("flat", "flatten", ["relu"], attrs={"start_dim": 1, "end_dim": -1}, shape=(1, 512))
    g.add("fc", "linear", ["flat"], params={"weight": weight("fc.weight", (10, 512))},
          shape=(1, 10))
    result = inspect_graph(g, B4096)
    assert {n: a.device for n, a in result.assignments.items()} == {
        "x": DPU, "conv": DPU, "relu": DPU, "flat": DPU, "fc": CPU}
    assert result.assignments["fc"].reason == "Not in quantizable part."


def test_float_nodes_run_on_the_cpu():
    g = small_net()
    result = inspect_graph(g, B4096, float_nodes=["conv1"])
    assert result.assignments["conv1"].reason == "Not in quantizable part."
    assert result.device_of("relu1") == DPU and result.assignments["relu1"].engine == (
        "A nonlinear function the DPU engines support.")


def test_unsupported_activation_is_reported_before_its_slope():
    g = small_net()
    assert reason(g, "DPUCAHX8L_ISA0", "leaky") == (CPU, "DPUCAHX8L_ISA0 does not support leaky_relu.")
    assert reason(g, B4096, "leaky") == (CPU, "Its alpha is 0.1, but DPU only supports 0.1015625.")
