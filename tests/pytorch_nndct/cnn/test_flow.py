"""calib -> test on real trained models: accuracy, exact fix positions, exact test outputs."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F

import models
from quant_flow import calibrate, plain_config, quant_info, test_quantizer
from reference import np_diffs, np_fix, np_mode


@pytest.mark.parametrize("fixture", ["digits_cnn", "digits_mlp", "residual_net", "conv1d_net"])
def test_8bit_accuracy_within_one_point(fixture, request, digits, tmp_path):
    model = request.getfixturevalue(fixture)
    x_train, _, x_test, y_test = digits
    float_acc = models.accuracy(model, x_test, y_test)
    calibrate(model, x_train[:500], tmp_path)
    quant = test_quantizer(model, x_test, tmp_path).quant_model
    quant_acc = models.accuracy(quant, x_test, y_test)
    print(f"{fixture}: float {float_acc:.2f}% int8 {quant_acc:.2f}%")
    assert float_acc > 90.0
    assert abs(float_acc - quant_acc) <= 1.0


def test_mlp_fix_positions_match_independent_diffs(digits_mlp, digits, tmp_path):
    x = digits[0][:400]
    calibrate(digits_mlp, x, tmp_path, batch=100, quant_config_file=plain_config(tmp_path))
    info = quant_info(tmp_path)
    for layer in ("l1", "l2", "l3"):
        for role in ("weight", "bias"):
            data = getattr(getattr(digits_mlp, layer), role).detach().numpy()
            assert info["param"][f"DigitsMLP::{layer}.{role}"] == (8, np_diffs(data, 8, 5, "std_round"))
    # input: per batch, search range 1 (the max-based position), then the mode over batches
    flat = x.reshape(len(x), -1).numpy()
    votes = [np_diffs(flat[i:i + 100], 8, 1, "half_up") for i in range(0, 400, 100)]
    assert info["output"]["DigitsMLP::nndct_input_0"] == (8, np_mode(votes))
    # the linear layers' outputs are fused into the relus: one entry each, after the relu
    assert list(info["output"]) == ["DigitsMLP::nndct_input_0", "DigitsMLP::nndct_relu_3",
                                    "DigitsMLP::nndct_relu_5", "DigitsMLP::nndct_dense_6"]
    assert info["input"] == {}


def test_conv_bn_folded_weight_fix_position(digits_cnn, digits, tmp_path):
    calibrate(digits_cnn, digits[0][:200], tmp_path, quant_config_file=plain_config(tmp_path))
    info = quant_info(tmp_path)
    conv, bn = digits_cnn.conv1, digits_cnn.bn1
    s = bn.weight.detach().double().numpy() / np.sqrt(bn.running_var.double().numpy() + bn.eps)
    w = (conv.weight.detach().double().numpy() * s[:, None, None, None]).astype(np.float32)
    b = ((conv.bias.detach().double().numpy() - bn.running_mean.double().numpy()) * s
         + bn.bias.detach().double().numpy()).astype(np.float32)
    assert info["param"]["DigitsCNN::conv1.weight"] == (8, np_diffs(w, 8, 5, "std_round"))
    assert info["param"]["DigitsCNN::conv1.bias"] == (8, np_diffs(b, 8, 5, "std_round"))
    # pw had no bias: folding its BatchNorm creates one
    assert "DigitsCNN::pw.bias" in info["param"]


def test_mlp_test_mode_equals_independent_computation(digits_mlp, digits, tmp_path):
    config = plain_config(tmp_path)
    calibrate(digits_mlp, digits[0][:400], tmp_path, quant_config_file=config)
    info = quant_info(tmp_path)
    x = digits[2][:64]
    got = test_quantizer(digits_mlp, x, tmp_path, quant_config_file=config).quant_model(x)

    def fp(section, name):
        return info[section][f"DigitsMLP::{name}"][1]

    h = torch.from_numpy(np_fix(x.reshape(64, -1).numpy(), 8, fp("output", "nndct_input_0"), "half_up"))
    names = ["nndct_relu_3", "nndct_relu_5", "nndct_dense_6"]
    for layer, out_name in zip(("l1", "l2", "l3"), names):
        lin = getattr(digits_mlp, layer)
        w = torch.from_numpy(np_fix(lin.weight.detach().numpy(), 8, fp("param", f"{layer}.weight"), "std_round"))
        b = torch.from_numpy(np_fix(lin.bias.detach().numpy(), 8, fp("param", f"{layer}.bias"), "std_round"))
        h = F.linear(h, w, b)
        if layer != "l3":
            h = torch.relu(h)
        h = torch.from_numpy(np_fix(h.numpy(), 8, fp("output", out_name), "half_up"))
    assert torch.equal(got, h)


def test_outputs_lie_on_their_grid(residual_net, digits, tmp_path):
    calibrate(residual_net, digits[0][:200], tmp_path)
    info = quant_info(tmp_path)
    quantizer = test_quantizer(residual_net, digits[2], tmp_path)
    quantizer.quant_model(digits[2][:16])
    for name, (bw, fp) in info["output"].items():
        codes = quantizer.runtime.last_outputs[name].double() * 2.0 ** fp
        assert torch.equal(codes, codes.round()), name
        assert codes.min() >= -(2 ** (bw - 1)) and codes.max() <= 2 ** (bw - 1) - 1
    # the residual add is followed by relu: its fix sits on the relu
    traced = {v: k for k, v in quantizer.captured.traced_names.items()}
    assert traced["ResidualNet::ResidualNet/add"] not in info["output"]
    assert traced["ResidualNet::ResidualNet/relu_2"] in info["output"]
