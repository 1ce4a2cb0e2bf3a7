"""QAT deployment as the guide runs it (deployable.pth, deployable_model, xmodel on the CPU),
starting thresholds from a calibration, and what QAT buys over post-training quantization."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import qat_models
from nndct_shared.cnn_export import evaluate_xmodel
from nndct_shared.graph import to_op_name
from nndct_shared.messages import DeviceError, ExportError, MissingFileError, ModelTypeError, QuantInfoError
from nndct_shared.quant_info_v3 import read_record
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct import QatProcessor
from pytorch_nndct.apis import torch_quantizer

INPUT = "ResNetlet::nndct_input_0"
OUTPUT = "ResNetlet::nndct_dense_8"


def test_to_deployable_saves_the_trained_float_weights(qat_run, float_model):
    saved = torch.load(qat_run.out_dir / "deployable.pth", weights_only=True)
    # the float model's keys, plus conv2.bias: conv2 had none, BatchNorm folding made one
    assert set(saved) - set(float_model.state_dict()) == {"conv2.bias"}
    assert set(float_model.state_dict()) <= set(saved)
    assert saved["conv2.bias"].shape == (8,)
    assert not torch.equal(saved["fc.weight"], float_model.fc.weight)
    assert float_model.fc.weight.requires_grad     # the user's model is untouched


def test_deployable_model_reloads_in_a_new_processor_and_exports_the_xmodel(qat_run, float_model,
                                                                            digits_data, tmp_path):
    """The guide's two-step deployment: a later process rebuilds the deployable model from
    qat_result on the CPU, forwards one sample, and exports; the xmodel computes the same."""
    x_test = digits_data[2]
    processor = QatProcessor(float_model, (x_test[:1],), bitwidth=8, device="cpu")
    deployable = processor.deployable_model(str(qat_run.out_dir), used_for_xmodel=True)
    with torch.no_grad():
        assert torch.equal(deployable(x_test), qat_run.deployable(x_test))
        expected = deployable(x_test[:1]).numpy()
    path = processor.export_xmodel(str(tmp_path))
    xgraph = read_xmodel(path)
    fixed = {op.input_ops[0]: op.fix for op in xgraph.ops_of_type("fix")}
    info = read_record(qat_run.out_dir / "quant_info.json").info
    assert fixed == {to_op_name(name): tuple(entry) for name, entry in {**info.param, **info.output}.items()}
    got = evaluate_xmodel(path, {to_op_name(INPUT): x_test[:1].numpy()})[to_op_name(OUTPUT) + "_fix"]
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)


def test_deployable_model_needs_the_saved_model(float_model, digits_data, tmp_path):
    processor = QatProcessor(float_model, (digits_data[2][:1],), device="cpu")
    with pytest.raises(ExportError) as info:
        processor.deployable_model(str(tmp_path))
    assert info.value.msg_id == "QUANTIZER_TORCH_QAT_NO_DEPLOYABLE"
    assert "deployable.pth" in str(info.value)


def test_xmodel_is_exported_from_the_cpu_only(qat_run, float_model, digits_data):
    processor = QatProcessor(float_model, (digits_data[2][:1],), device="cpu")
    deployable = processor.deployable_model(str(qat_run.out_dir))
    deployable.to("meta")       # any device but the CPU (no GPU needed for the check)
    with pytest.raises(DeviceError) as info:
        processor.export_xmodel(str(qat_run.out_dir / "never"))
    assert info.value.msg_id == "QUANTIZER_TORCH_XMODEL_DEVICE" and "'meta'" in str(info.value)
    assert not (qat_run.out_dir / "never").exists()


def test_trainable_model_starts_from_a_calibration(float_model, digits_data, tmp_path):
    x = digits_data[0]
    calib = torch_quantizer("calib", float_model, x[:100], output_dir=str(tmp_path), device="cpu")
    with torch.no_grad():
        calib.quant_model(x[:200])
    info = read_record(calib.export_quant_config()).info
    processor = QatProcessor(float_model, (x[:1],), device="cpu")
    model = processor.trainable_model(calib_dir=str(tmp_path))
    # activation/input thresholds come from the calibration; weights start from themselves
    assert model.fix_positions() == {name: fp for name, (_, fp) in info.output.items()}
    assert model.quantizers.uninitialized() == list(info.param)
    with pytest.raises(MissingFileError) as missing:
        processor.trainable_model(calib_dir=str(tmp_path / "nothing"))
    assert missing.value.msg_id == "QUANTIZER_TORCH_NO_CALIB_RESULT"
    other = tmp_path / "other"
    calib = torch_quantizer("calib", qat_models.NoStubs(), x[:10], output_dir=str(other), device="cpu")
    calib.quant_model(x[:10])
    calib.export_quant_config()
    with pytest.raises(QuantInfoError) as mismatch:
        processor.trainable_model(calib_dir=str(other))
    assert mismatch.value.msg_id == "QUANTIZER_TORCH_CALIB_RESULT_MISMATCH"


def test_data_parallel_is_not_allowed():
    with pytest.raises(ModelTypeError) as info:
        QatProcessor(nn.DataParallel(qat_models.ResNetlet()), (torch.rand(1, 1, 8, 8),), device="cpu")
    assert info.value.msg_id == "QUANTIZER_TORCH_DATA_PARALLEL_NOT_ALLOWED"


def test_qat_recovers_what_3_bit_post_training_quantization_loses(float_model, digits_data, tmp_path):
    """3-bit weights and activations: post-training quantization (the guide's defaults, with
    cross-layer equalization and bias correction) loses ~30 points on digits; three epochs of
    QAT win most of them back, and the deployable model keeps exactly what training reached."""
    x, y, x_test, y_test = digits_data
    calib = torch_quantizer("calib", float_model, x[:200], output_dir=str(tmp_path / "ptq"), bitwidth=3,
                            device="cpu")
    with torch.no_grad():
        for i in range(0, len(x), 200):
            calib.quant_model(x[i:i + 200])
    calib.export_quant_config()
    ptq = torch_quantizer("test", float_model, x[:1], output_dir=str(tmp_path / "ptq"), bitwidth=3,
                          device="cpu")
    ptq_acc = qat_models.accuracy(ptq.quant_model, x_test, y_test)

    processor = QatProcessor(float_model, (x[:1],), bitwidth=3, device="cpu")
    model = processor.trainable_model()
    optimizer = torch.optim.Adam([{"params": model.quantizer_parameters(), "lr": 1e-2},
                                  {"params": model.non_quantizer_parameters(), "lr": 1e-3}])
    qat_models.train(model, optimizer, x, y, epochs=3, seed=1)
    deployable = processor.to_deployable(model, str(tmp_path / "qat"))
    qat_acc = qat_models.accuracy(model, x_test, y_test)
    deploy_acc = qat_models.accuracy(deployable, x_test, y_test)
    float_acc = qat_models.accuracy(float_model, x_test, y_test)
    print(f"\n3 bit: float {float_acc:.2f} %, post-training {ptq_acc:.2f} %, QAT {qat_acc:.2f} %, "
          f"deployable {deploy_acc:.2f} %")
    assert deploy_acc == qat_acc
    assert deploy_acc >= ptq_acc + 10.0
    assert {bw for bw, _ in read_record(tmp_path / "qat" / "quant_info.json").info.output.values()} == {3}
