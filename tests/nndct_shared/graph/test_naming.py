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
