"""The Keras `Inspector` (tf_nndct.quantization.api.Inspector): the CNN flow's capture, then the
neutral partition, report and pictures, so a Keras model and its PyTorch twin get the same
device assignments, reasons and report (node names mapped by position, as in the quantizer's
cross-framework tests)."""
from __future__ import annotations

import re

import keras
import pytest
import torch

import twins
from nndct_shared.messages import NndctError
from pytorch_nndct.apis import Inspector as TorchInspector
from test_keras_cnn_cross_framework import node_map, rename
from tf_nndct.quantization.api import Inspector

L = keras.layers
TARGET = "DPUCZDX8G_ISA1_B4096"


@pytest.mark.parametrize("pair", ["resnet2d", "net1d"])
def test_same_partition_reasons_and_report_as_the_pytorch_inspector(pair, tmp_path):
    torch_cls, builder = {"resnet2d": (twins.ResNet2d, twins.resnet2d_keras),
                          "net1d": (twins.Net1d, twins.net1d_keras)}[pair]
    torch.manual_seed(0)
    torch_model = torch_cls().eval()
    keras_model = builder(torch_model)
    x = twins.nchw(twins.digits_images(1) if pair == "resnet2d" else twins.sequences(1))
    t_result = TorchInspector(TARGET).inspect(torch_model, x, device="cpu", output_dir=str(tmp_path / "t"),
                                              verbose_level=0)
    k_result = Inspector(TARGET).inspect(keras_model, output_dir=str(tmp_path / "k"), verbose_level=0)
    names = node_map(t_result.graph, k_result.graph)
    t_rows = [(names[a.name], a.op_type, a.device, rename(a.why, names)) for a in t_result.assignments.values()]
    k_rows = [(a.name, a.op_type, a.device, a.why) for a in k_result.assignments.values()]
    assert t_rows == k_rows
    assert {a.device for a in k_result.assignments.values()} >= {"DPU"}
    if pair == "net1d":  # 1-D convolutions and pools run on the CPU ("only 2-D ...")
        assert any(a.device == "CPU" and "only 2-D" in a.reason for a in k_result.assignments.values())
    report = f"inspect_{TARGET}.txt"
    assert _layout_free(rename((tmp_path / "t" / report).read_text(), names)) == \
        _layout_free((tmp_path / "k" / report).read_text())


def _layout_free(text: str) -> str:
    """The report without its column alignment (column widths follow the longest node name)."""
    return re.sub(r"\s+", " ", re.sub(r"-{3,}", "-", text))


def test_inspector_errors_and_recurrent_layers(tmp_path, caplog):
    with pytest.raises(NndctError) as info:
        Inspector("0x123")
    assert info.value.msg_id == "QUANTIZER_TF_INSPECTOR_INPUT_FORMAT"
    with pytest.raises(NndctError) as info:
        Inspector("NOT_A_DPU")
    assert info.value.msg_id == "QUANTIZER_TF_UNKNOWN_TARGET"
    inp = keras.Input((12, 4))
    x = L.Conv1D(4, 3, name="conv")(inp)
    x = L.LSTM(4, name="lstm")(x)
    model = keras.Model(inp, L.Dense(2, name="head")(x), name="WithLstm")
    with pytest.raises(NndctError) as info:
        Inspector(TARGET).inspect(model, output_dir=str(tmp_path), image_format="jpg")
    assert info.value.msg_id == "QUANTIZER_TF_INSPECTOR_OUTPUT_FORMAT"
    result = Inspector(TARGET).inspect(model, output_dir=str(tmp_path), verbose_level=0)
    assert "Recurrent layers (lstm)" in caplog.text
    assert [a.name for a in result.assignments.values()] == [
        "WithLstm::input_0", "WithLstm::conv", "WithLstm::lstm/output_0", "WithLstm::head"]
