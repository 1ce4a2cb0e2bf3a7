"""Names as the reference quantizer forms them (spec: reference-rnn-quantizer-torch §3, §5)."""
from __future__ import annotations

import pytest

from nndct_shared.graph import Graph, local_name, scoped_name, to_file_name, to_op_name


def test_scoped_name() -> None:
    assert scoped_name("P", "w_ii * input_0 + bias_i") == "P::w_ii * input_0 + bias_i"
    assert scoped_name(Graph("Lstm_StandardLstmCell_layer_0_forward"), "h_next") == (
        "Lstm_StandardLstmCell_layer_0_forward::h_next")
    with pytest.raises(ValueError, match="needs a graph name and a local name"):
        scoped_name("", "x")
    assert local_name("P::it*cct") == "it*cct"
    assert local_name("plain") == "plain"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("P::w_ii * input_0 + bias_i", "P__w_ii___input_0___bias_i"),
        ("DecoderRnn1_StandardLstmCell_layer_0_forward::it*cct",
         "DecoderRnn1_StandardLstmCell_layer_0_forward__it_cct"),
        ("FFN::FFN/Linear[l1]/10", "FFN__FFN_Linear_l1__10"),
        ("FFN::l1.weight", "FFN__l1_weight"),
        ("a-b\tc\u00e9", "a_b_c_"),
        ("already_ok_123", "already_ok_123"),
    ],
)
def test_to_op_name_and_file_name(name: str, expected: str) -> None:
    assert to_op_name(name) == expected
    assert to_file_name(name) == expected


def _cnn_graph() -> Graph:
    """input -> conv -> relu -> depthwise conv -> x * 0.5 -> flatten -> linear, names as a front
    end traced them (the model input written last, to show the order is topological)."""
    import numpy as np

    from nndct_shared.graph import Tensor

    g = Graph("Net")
    w = np.zeros((4, 1, 3, 3), np.float32)
    conv = dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    g.add("Net::Net/Conv2d[c]/c", "conv2d", ["Net::input_0"], attrs=dict(conv, groups=1),
          params={"weight": Tensor("Net::c.weight", data=w)}, shape=(1, 4, 4, 4))
    g.add("Net::input_0", "input", shape=(1, 1, 4, 4))
    g.add("Net::Net/relu", "relu", ["Net::Net/Conv2d[c]/c"], shape=(1, 4, 4, 4))
    g.add("Net::Net/Conv2d[dw]/dw", "conv2d", ["Net::Net/relu"], attrs=dict(conv, groups=4),
          params={"weight": Tensor("Net::dw.weight", data=w)}, shape=(1, 4, 4, 4))
    g.add("Net::Net/mul", "mul", ["Net::Net/Conv2d[dw]/dw"], attrs={"other_index": 1},
          params={"other": Tensor("Net::Net/mul.other", data=np.float32(0.5))}, shape=(1, 4, 4, 4))
    g.add("Net::Net/flatten", "flatten", ["Net::Net/mul"], attrs=dict(start_dim=1, end_dim=3), shape=(1, 64))
    g.add("Net::Net/Linear[fc]/fc", "linear", ["Net::Net/flatten"],
          params={"weight": Tensor("Net::fc.weight", data=np.zeros((2, 64), np.float32))}, shape=(1, 2))
    g.set_outputs(["Net::Net/Linear[fc]/fc"])
    return g


def test_nndct_names_are_the_reference_op_types_and_topological_indices() -> None:
    from nndct_shared.graph import nndct_node_names

    names = nndct_node_names(_cnn_graph())
    assert names == {
        "Net::input_0": "Net::nndct_input_0", "Net::Net/Conv2d[c]/c": "Net::nndct_conv2d_1",
        "Net::Net/relu": "Net::nndct_relu_2", "Net::Net/Conv2d[dw]/dw": "Net::nndct_depthwise_conv2d_3",
        "Net::Net/mul": "Net::nndct_elemwise_mul_4", "Net::Net/flatten": "Net::nndct_flatten_5",
        "Net::Net/Linear[fc]/fc": "Net::nndct_dense_6"}


def test_rename_nodes_moves_tensors_outputs_and_constant_operands() -> None:
    from nndct_shared.graph import nndct_node_names, rename_nodes

    g = _cnn_graph()
    r = rename_nodes(g, nndct_node_names(g))
    assert [n.name for n in r.topological_order()] == [
        "Net::nndct_input_0", "Net::nndct_conv2d_1", "Net::nndct_relu_2", "Net::nndct_depthwise_conv2d_3",
        "Net::nndct_elemwise_mul_4", "Net::nndct_flatten_5", "Net::nndct_dense_6"]
    assert r.node("Net::nndct_relu_2").inputs == ["Net::nndct_conv2d_1"]
    assert r.tensor("Net::nndct_flatten_5").shape == (1, 64) and r.tensor("Net::Net/flatten") is None
    assert [n.name for n in r.outputs] == ["Net::nndct_dense_6"]
    assert [n.name for n in r.inputs] == ["Net::nndct_input_0"]
    # weights keep their module paths; a constant operand named after its node follows it
    assert r.node("Net::nndct_conv2d_1").params["weight"].name == "Net::c.weight"
    assert r.node("Net::nndct_elemwise_mul_4").params["other"].name == "Net::nndct_elemwise_mul_4.other"
    assert r.node("Net::nndct_conv2d_1").params["weight"].data is g.node("Net::Net/Conv2d[c]/c").params["weight"].data
    assert g.node("Net::Net/relu").name == "Net::Net/relu"  # the original is left as it was


def test_custom_and_aten_ops_are_named_by_their_own_type() -> None:
    from nndct_shared.graph import nndct_node_names

    g = Graph("M")
    g.add("x", "input", shape=(1, 2, 4))
    g.add("p", "avg_pool1d", ["x"], attrs=dict(kernel=(2,), stride=(2,), padding=(0,), ceil_mode=False,
                                               count_include_pad=True), shape=(1, 2, 2))
    g.add("c", "custom", ["p"], attrs={"op_name": "my::Op"}, shape=(1, 2, 2))
    assert list(nndct_node_names(g).values()) == ["M::nndct_input_0", "M::aten_avg_pool1d_1", "M::my_Op_2"]


def test_captured_models_are_renamed_once_with_their_traced_names() -> None:
    from nndct_shared.cnn.capture import CapturedModel

    g = _cnn_graph()
    captured = CapturedModel(g, layer_types={"Net::Net/relu": "relu"}, quantized={"Net::Net/relu"},
                             quant_inputs={"Net::input_0"}, sources={"Net::Net/relu": "line 3"},
                             output_names=["Net::Net/Linear[fc]/fc"])
    captured.apply_nndct_names()
    assert captured.layer_types == {"Net::nndct_relu_2": "relu"} and captured.quantized == {"Net::nndct_relu_2"}
    assert captured.quant_inputs == {"Net::nndct_input_0"} and captured.output_names == ["Net::nndct_dense_6"]
    assert captured.sources == {"Net::nndct_relu_2": "line 3"}
    assert captured.traced_names["Net::nndct_depthwise_conv2d_3"] == "Net::Net/Conv2d[dw]/dw"
    graph = captured.graph
    captured.apply_nndct_names()                               # already named: unchanged
    assert captured.graph is graph
