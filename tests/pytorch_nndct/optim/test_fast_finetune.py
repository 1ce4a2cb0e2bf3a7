"""Fast finetune (AdaQuant) on a depthwise-separable CNN at 4 bits, where calibration loses accuracy."""
from __future__ import annotations

import pytest
import torch

import models
from quant_flow import plain_config
from nndct_shared.messages.errors import MissingFileError
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.optim import FT_PARAM_FILE, load_ft_param

CPU = torch.device("cpu")


def _run(model, data):
    """The user's forward loop (the guide's `evaluate`), labels not needed."""
    with torch.no_grad():
        for i in range(0, len(data), 100):
            model(data[i:i + 100])


def _quantize(model, digits, out, finetune: bool):
    x_train, _, x_test, y_test = digits
    # CLE and bias correction off on both sides: the comparison isolates what finetuning adds
    config = plain_config(out, bit_width=4)
    calib = torch_quantizer("calib", model, x_train[:100], output_dir=str(out), bitwidth=4, device=CPU,
                            quant_config_file=config)
    if finetune:
        results = calib.fast_finetune(_run, (calib.quant_model, x_train[:400]))
    else:
        results = []
        _run(calib.quant_model, x_train[:400])
    calib.export_quant_config()
    test = torch_quantizer("test", model, x_train[:100], output_dir=str(out), bitwidth=4, device=CPU,
                           quant_config_file=config)
    if finetune:
        test.load_ft_param()
    return test, results, models.accuracy(test.quant_model, x_test, y_test)


@pytest.fixture(scope="module")
def quantized(ds_model, digits, tmp_path_factory):
    plain = _quantize(ds_model, digits, tmp_path_factory.mktemp("plain"), finetune=False)
    tuned = _quantize(ds_model, digits, tmp_path_factory.mktemp("ft"), finetune=True)
    return plain, tuned


def test_finetune_recovers_4bit_accuracy(ds_model, digits, quantized):
    (_, _, plain_acc), (_, results, ft_acc) = quantized
    float_acc = models.accuracy(ds_model, digits[2], digits[3])
    print(f"float {float_acc:.2f} %, 4-bit calibration {plain_acc:.2f} %, 4-bit fast finetune {ft_acc:.2f} %")
    assert float_acc - plain_acc >= 1.0  # the premise: plain 4-bit calibration loses accuracy
    assert ft_acc >= plain_acc + 0.5  # finetuning recovers a measured part of it
    assert [r.node for r in results] == [f"DepthwiseSeparable::nndct_{op}" for op in (
        "conv2d_1", "depthwise_conv2d_3", "conv2d_5", "dense_9")]
    assert all(r.mse_after <= r.mse_before for r in results)
    assert any(r.mse_after < 0.9 * r.mse_before for r in results)


def test_load_ft_param_round_trip(ds_model, digits, quantized, tmp_path):
    (_, _, _), (tuned, _, _) = quantized
    again = torch_quantizer("test", ds_model, digits[0][:100], output_dir=str(tuned.output_dir), bitwidth=4,
                            device=CPU, quant_config_file=plain_config(tuned.output_dir, bit_width=4))
    x = digits[2][:64]
    with torch.no_grad():
        before = again.quant_model(x)
        loaded = load_ft_param(again)
        after = again.quant_model(x)
        reference = tuned.quant_model(x)
    assert len(loaded) == 8  # weight and bias of c1, dw, pw, fc
    assert torch.equal(after, reference)
    assert not torch.equal(before, after)  # without the file the finetuned weights are missing
    saved = torch.load(tuned.output_dir / FT_PARAM_FILE, weights_only=True)
    for node in again.graph:
        for role, tensor in node.params.items():
            if tensor.name in saved:
                assert torch.equal(torch.from_numpy(tensor.data), saved[tensor.name])


def test_missing_param_file_is_a_catalogued_error(ds_model, digits, tmp_path):
    calib = torch_quantizer("calib", ds_model, digits[0][:10], output_dir=str(tmp_path), bitwidth=4, device=CPU)
    with pytest.raises(MissingFileError) as info:
        load_ft_param(calib)
    assert "QUANTIZER_TORCH_FAST_FINETUNE" in str(info.value)
    assert str(tmp_path / FT_PARAM_FILE) in str(info.value)
