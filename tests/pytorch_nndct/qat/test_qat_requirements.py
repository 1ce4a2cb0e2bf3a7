"""The guide's QAT requirements and workflow errors, each with its catalogued message."""
from __future__ import annotations

import logging

import pytest
import torch

import qat_models
from nndct_shared.messages import ExportError, ModelStructureError, ModelTypeError, WorkflowError
from pytorch_nndct import QatProcessor

X = torch.rand(2, 1, 8, 8)


def test_missing_quantstub_raises_input_not_quantized():
    with pytest.raises(ModelStructureError) as info:
        QatProcessor(qat_models.NoStubs(), (X,), device="cpu")
    assert info.value.msg_id == "QUANTIZER_TORCH_INPUT_NOT_QUANTIZED"
    assert info.value.fields == {"name": "x"}


def test_plus_between_quantized_tensors_raises_not_a_module():
    with pytest.raises(ModelTypeError) as info:
        QatProcessor(qat_models.PlusModel().eval(), (X,), device="cpu")
    assert info.value.msg_id == "QUANTIZER_TORCH_NOT_A_MODULE"
    assert info.value.fields["op"] == "+"
    assert info.value.fields["source"].endswith("x = self.relu2(x + self.bn2(self.conv2(x)))")
    assert "qat_models.py" in info.value.fields["source"]


def test_module_called_twice_raises_reused_module():
    processor = QatProcessor(qat_models.ReusedReLU().eval(), (X,), device="cpu")
    with pytest.raises(ModelStructureError) as info:
        processor.trainable_model()
    assert info.value.msg_id == "QUANTIZER_TORCH_REUSED_MODULE"
    assert info.value.fields == {"module": "relu1", "count": 2}


def test_allow_reused_module_warns_and_trains(caplog):
    float_model = qat_models.ReusedReLU().eval()
    processor = QatProcessor(float_model, (X,), device="cpu")
    with caplog.at_level(logging.WARNING, logger="nndct"):
        model = processor.trainable_model(allow_reused_module=True)
    assert any("QUANTIZER_TORCH_REUSED_MODULE" in r.getMessage() for r in caplog.records)
    # the two relu1 calls are two graph nodes, each with its own output quantizer
    names = [n for n, _ in model.named_quantizers()]
    traced = processor._capture.captured.traced_names
    assert sum("ReLU[relu1]" in traced.get(n, "") for n in names) == 2
    out = model(X)
    assert out.shape == (2, 10)


def test_to_deployable_before_trainable_model_raises_qat_process_error(tmp_path):
    processor = QatProcessor(qat_models.ResNetlet().eval(), (X,), device="cpu")
    with pytest.raises(WorkflowError) as info:
        processor.to_deployable(qat_models.ResNetlet(), str(tmp_path))
    assert info.value.msg_id == "QUANTIZER_TORCH_QAT_PROCESS_ERROR"


def test_to_deployable_rejects_other_models_and_unrun_models(tmp_path):
    processor = QatProcessor(qat_models.ResNetlet().eval(), (X,), device="cpu")
    model = processor.trainable_model()
    with pytest.raises(ModelTypeError) as info:
        processor.to_deployable(qat_models.ResNetlet(), str(tmp_path))
    assert info.value.msg_id == "QUANTIZER_TORCH_QAT_MODEL_MISMATCH"
    with pytest.raises(ExportError) as info:
        processor.to_deployable(model, str(tmp_path))
    assert info.value.msg_id == "QUANTIZER_TORCH_NO_FORWARD"
    assert not (tmp_path / "quant_info.json").exists()


def test_export_xmodel_before_to_deployable_raises(tmp_path):
    processor = QatProcessor(qat_models.ResNetlet().eval(), (X,), device="cpu")
    processor.trainable_model()
    with pytest.raises(ExportError) as info:
        processor.export_xmodel(str(tmp_path))
    assert info.value.msg_id == "QUANTIZER_TORCH_QAT_NO_DEPLOYABLE"


def test_guide_import_path_and_arguments():
    import pytorch_nndct
    from pytorch_nndct.qat import QatProcessor as direct

    assert pytorch_nndct.QatProcessor is direct
    with pytest.raises(NotImplementedError, match="mix_bit"):
        QatProcessor(qat_models.ResNetlet().eval(), (X,), mix_bit=True, device="cpu")
    with pytest.raises(ModelTypeError):
        QatProcessor(qat_models.ResNetlet, (X,), device="cpu")


class _Arith(torch.nn.Module):
    """quant -> conv -> <op>(x, x) -> dequant, with the operation given as a function."""

    def __init__(self, op, after_dequant: bool = False):
        super().__init__()
        from pytorch_nndct.nn import DeQuantStub, QuantStub

        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.op, self.after = op, after_dequant

    def forward(self, x):
        x = self.conv(self.quant(x))
        if self.after:
            x = self.dequant(x)
            return self.op(x, x)
        return self.dequant(self.op(x, x))


@pytest.mark.parametrize("op, label", [
    (lambda a, b: a + b, "+"),
    (lambda a, b: a - b, "-"),
    (torch.add, "torch.add"),
    (torch.sub, "torch.sub"),
    (lambda a, b: a.add(b), "Tensor.add"),
])
def test_every_arithmetic_of_the_guides_table_needs_its_functional_module(op, label):
    with pytest.raises(ModelTypeError) as info:
        QatProcessor(_Arith(op).eval(), (X,), device="cpu")
    assert info.value.msg_id == "QUANTIZER_TORCH_NOT_A_MODULE"
    assert info.value.fields["op"] == label
    assert "test_qat_requirements.py" in info.value.fields["source"]


def test_functional_modules_and_float_arithmetic_are_accepted():
    from pytorch_nndct.nn.modules import functional

    for model in (_Arith(functional.Add()), _Arith(functional.Sub()), _Arith(lambda a, b: a + b, True)):
        processor = QatProcessor(model.eval(), (X,), device="cpu")
        assert processor.trainable_model()(X).shape == (2, 2, 8, 8)
