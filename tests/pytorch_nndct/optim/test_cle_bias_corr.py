"""Cross-layer equalization and bias correction on real trained digits models."""
from __future__ import annotations

import numpy as np
import torch

import models
from nndct_shared.algorithms import input_channel_ranges, output_channel_ranges
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.optim import correct_bias, equalize_quantizer, find_cle_pairs
from pytorch_nndct.optim.layer_data import fixed_runtime, record_inputs, run_with, weighted_modules
from pytorch_nndct.optim.bias_correction import mean_output_error

CPU = torch.device("cpu")


def _run(model, data):
    with torch.no_grad():
        for i in range(0, len(data), 100):
            model(data[i:i + 100])


def _imbalanced(model):
    """The same float function with dw's output channels scaled by 1/16..16 (pw compensates)."""
    import copy

    m = copy.deepcopy(model)
    k = torch.logspace(-4, 4, 16, base=2.0)[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        m.dw.weight.mul_(k.view(-1, 1, 1, 1))
        m.dw.bias.mul_(k)
        m.pw.weight.div_(k.view(1, -1, 1, 1))
    return m


def _accuracy(model, digits, out, cle: bool) -> float:
    x_train, _, x_test, y_test = digits
    q = torch_quantizer("calib", model, x_train[:100], output_dir=str(out), device=CPU)
    if cle:
        equalize_quantizer(q)
    _run(q.quant_model, x_train[:300])
    q.export_quant_config()
    t = torch_quantizer("test", model, x_train[:100], output_dir=str(out), device=CPU)
    if cle:
        equalize_quantizer(t)
    return models.accuracy(t.quant_model, x_test, y_test)


def test_cle_pairs_float_function_and_equal_ranges(plain_model, digits, tmp_path):
    q = torch_quantizer("calib", plain_model, digits[0][:10], output_dir=str(tmp_path), device=CPU)
    pairs = find_cle_pairs(q.graph)
    # c1 -relu-> dw and dw -relu-> pw qualify; pw -relu-> pool -> flatten -> fc does not (flatten)
    assert [(p.first.rsplit("/", 1)[-1], p.second.rsplit("/", 1)[-1]) for p in pairs] == [("c1", "dw"), ("dw", "pw")]
    x = digits[2][:200]
    with torch.no_grad(), run_with(q.quant_model, None):
        before = q.quant_model(x)
        equalize_quantizer(q)
        after = q.quant_model(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    for pair in pairs:
        a, b = q.graph.node(pair.first), q.graph.node(pair.second)
        r1 = output_channel_ranges(a.params["weight"].data)
        r2 = input_channel_ranges(b.params["weight"].data, b.attrs.get("groups", 1))
        np.testing.assert_allclose(r1, r2, rtol=1e-5)


def test_cle_undoes_planted_channel_imbalance(plain_model, digits, tmp_path):
    skewed = _imbalanced(plain_model)
    with torch.no_grad():
        torch.testing.assert_close(skewed(digits[2]), plain_model(digits[2]), rtol=1e-4, atol=1e-4)
    base = _accuracy(plain_model, digits, tmp_path / "base", cle=False)
    without = _accuracy(skewed, digits, tmp_path / "skewed", cle=False)
    with_cle = _accuracy(skewed, digits, tmp_path / "cle", cle=True)
    print(f"8-bit: trained {base:.2f} %, channel-skewed {without:.2f} %, skewed + CLE {with_cle:.2f} %")
    assert with_cle >= without
    assert with_cle >= base - 1.0


def test_bias_correction_zeroes_mean_output_error(ds_model, digits, tmp_path):
    q = torch_quantizer("calib", ds_model, digits[0][:100], output_dir=str(tmp_path), device=CPU)
    batches = record_inputs(q.quant_model, _run, (q.quant_model, digits[0][:300]), max_samples=300)
    results = correct_bias(q, batches)
    assert [r.node.rsplit("/", 1)[-1] for r in results] == ["c1", "dw", "pw", "fc"]
    for r in results:
        print(r.node, np.abs(r.error_before).max(), np.abs(r.error_after).max())
    for r in results:  # what is left is the bias's and the output's own rounding (8 bit)
        assert np.abs(r.error_after).mean() < np.abs(r.error_before).mean()
    logits = results[-1]
    assert np.abs(logits.error_after).max() < 0.25 * np.abs(logits.error_before).max()
    assert (tmp_path / "bias_corr.pth").is_file()
