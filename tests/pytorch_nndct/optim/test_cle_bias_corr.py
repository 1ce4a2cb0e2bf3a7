"""Cross-layer equalization and bias correction on real trained digits models."""
from __future__ import annotations


import numpy as np
import pytest
import torch

import models
from helpers import reference_cle
from helpers.step_configs import step_config as _config
from nndct_shared.algorithms import corrected_bias, input_channel_ranges, output_channel_ranges
from nndct_shared.messages import MissingFileError
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.optim import BIAS_CORR_FILE, correct_bias, equalize_quantizer, find_cle_pairs
from pytorch_nndct.optim.layer_data import record_inputs, run_with, weighted_modules
from pytorch_nndct.optim.bias_correction import save_bias_corr

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


def _accuracy(model, digits, out, cle: bool, bias_corr: bool = False, bit_width: int = 8) -> float:
    """calib on 300 training images, then test-mode accuracy, with the steps set in the config."""
    x_train, _, x_test, y_test = digits
    config = _config(out, cle, bias_corr, bit_width)
    q = torch_quantizer("calib", model, x_train[:100], output_dir=str(out), device=CPU, quant_config_file=config)
    _run(q.quant_model, x_train[:300])
    q.export_quant_config()
    t = torch_quantizer("test", model, x_train[:100], output_dir=str(out), device=CPU, quant_config_file=config)
    return models.accuracy(t.quant_model, x_test, y_test)


def test_cle_pairs_float_function_and_the_references_weights(plain_model, digits, tmp_path):
    q = torch_quantizer("calib", plain_model, digits[0][:10], output_dir=str(tmp_path), device=CPU,
                        quant_config_file=_config(tmp_path, cle=False, bias_corr=False))
    pairs = find_cle_pairs(q.graph)
    # c1 -relu-> dw and dw -relu-> pw qualify; pw -relu-> pool -> flatten -> fc does not (flatten)
    assert [(p.first, p.second) for p in pairs] == [
        ("PlainDepthwise::nndct_conv2d_1", "PlainDepthwise::nndct_depthwise_conv2d_3"),
        ("PlainDepthwise::nndct_depthwise_conv2d_3", "PlainDepthwise::nndct_conv2d_5")]
    names = (pairs[0].first, pairs[1].first, pairs[1].second)
    chain = [{"weight": q.graph.node(n).params["weight"].data.copy(), "bias": q.graph.node(n).params["bias"].data.copy(),
              "groups": int(q.graph.node(n).attrs["groups"])} for n in names]
    skew_before = _range_skew(chain[1]["weight"], chain[2]["weight"], chain[2]["groups"])
    reference_cle.equalize_chain(chain)
    x = digits[2][:200]
    with torch.no_grad(), run_with(q.quant_model, None):
        before = q.quant_model(x)
        equalize_quantizer(q)
        after = q.quant_model(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    for name, want in zip(names, chain):
        node = q.graph.node(name)
        np.testing.assert_array_equal(node.params["weight"].data, want["weight"])
        module = next(m for m in q.quant_model.children() if getattr(m, "node_name", None) == name)
        np.testing.assert_array_equal(module.weight.detach().numpy(), want["weight"])  # copied into the model
    # the ranges moved toward each other (not equal: the reference's range of A includes its bias)
    assert _range_skew(chain[1]["weight"], chain[2]["weight"], chain[2]["groups"]) < skew_before


def _range_skew(w1, w2, groups2) -> float:
    """Mean |log(r1 / r2)| of a pair's output / input channel weight ranges."""
    return float(np.abs(np.log(output_channel_ranges(w1) / input_channel_ranges(w2, groups2))).mean())


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
    q = torch_quantizer("calib", ds_model, digits[0][:100], output_dir=str(tmp_path), device=CPU,
                        quant_config_file=_config(tmp_path, cle=False, bias_corr=False))
    batches = record_inputs(q.quant_model, _run, (q.quant_model, digits[0][:300]), max_samples=300)
    results = correct_bias(q, batches)
    assert not (tmp_path / BIAS_CORR_FILE).exists()  # correct_bias only computes; saving is separate
    save_bias_corr(q, results)
    assert [r.node for r in results] == [f"DepthwiseSeparable::nndct_{op}" for op in (
        "conv2d_1", "depthwise_conv2d_3", "conv2d_5", "dense_9")]
    for r in results:
        print(r.node, np.abs(r.error_before).max(), np.abs(r.error_after).max())
    for r in results:  # what is left is the bias's and the output's own rounding (8 bit)
        assert np.abs(r.error_after).mean() < np.abs(r.error_before).mean()
    logits = results[-1]
    assert np.abs(logits.error_after).max() < 0.25 * np.abs(logits.error_before).max()
    assert (tmp_path / "bias_corr.pth").is_file()


def test_one_pass_bias_correction_equals_recomputing_each_layer(ds_model, digits, tmp_path):
    """The layer walk (one pass, float and quantized side by side) gives exactly the biases,
    measured errors and fix positions of recomputing the model up to each layer (4 bits, so the
    corrections are large and every upstream correction matters downstream)."""
    from pytorch_nndct.optim.bias_correction import _correct_bias_by_recomputing

    results = {}
    for how in ("walk", "recompute"):
        q = torch_quantizer("calib", ds_model, digits[0][:100], output_dir=str(tmp_path / how), bitwidth=4,
                            device=CPU, quant_config_file=_config(tmp_path / how, cle=True, bias_corr=False, bit_width=4))
        batches = record_inputs(q.quant_model, _run, (q.quant_model, digits[0][:300]), max_samples=300)
        if how == "walk":
            found = correct_bias(q, batches)
        else:
            found = _correct_bias_by_recomputing(q, batches, dict(q.runtime.calibrated()))
        biases = {m.node_name: m.bias.detach().clone() for m in weighted_modules(q.quant_model)}
        results[how] = (found, biases, q.runtime.calibrated())
    (walk, walk_biases, walk_fix), (again, again_biases, again_fix) = results["walk"], results["recompute"]
    assert [r.node for r in walk] == [r.node for r in again] and len(walk) == 4
    for a, b in zip(walk, again):
        assert np.array_equal(a.error_before, b.error_before) and np.array_equal(a.error_after, b.error_after)
    assert all(torch.equal(walk_biases[k], again_biases[k]) for k in walk_biases)
    assert walk_fix == again_fix


@pytest.fixture(scope="module")
def four_bit(ds_model, digits, tmp_path_factory):
    """4-bit test accuracy of the depthwise-separable model with each step on its own."""
    out = tmp_path_factory.mktemp("four_bit")
    return {name: _accuracy(ds_model, digits, out / name, cle=cle, bias_corr=bc, bit_width=4)
            for name, cle, bc in (("plain", False, False), ("cle", True, False), ("bias_corr", False, True))}


def test_cle_and_bias_correction_help_a_depthwise_model_at_4_bits(ds_model, digits, four_bit):
    # Nagel et al. 2019 (DFQ): both target depthwise-separable nets, whose per-channel weight
    # ranges differ widely, at low bit widths; plain 4-bit calibration loses several points here.
    float_acc = models.accuracy(ds_model, digits[2], digits[3])
    print(f"4-bit: float {float_acc:.2f} %, plain {four_bit['plain']:.2f} %, CLE {four_bit['cle']:.2f} %, "
          f"bias correction {four_bit['bias_corr']:.2f} %")
    assert float_acc - four_bit["plain"] >= 2.0
    assert four_bit["cle"] >= four_bit["plain"] + 1.0
    assert four_bit["bias_corr"] >= four_bit["plain"] + 1.0


def test_default_config_runs_both_and_test_mode_loads_the_corrected_biases(ds_model, digits, tmp_path):
    x_train = digits[0]
    q = torch_quantizer("calib", ds_model, x_train[:100], output_dir=str(tmp_path), device=CPU)
    assert q.config.include_cle and q.config.include_bias_corr  # the guide's defaults
    assert len(q.post_training.cle_pairs) == 2  # c1 -> dw, dw -> pw
    _run(q.quant_model, x_train[:300])
    q.export_quant_config()
    saved = torch.load(tmp_path / BIAS_CORR_FILE, weights_only=True)
    # the reference's layout: node name -> per-output-channel corrections, for the corrected
    # layers c1, dw, pw (folded BN) and fc
    assert list(saved) == [f"DepthwiseSeparable::nndct_{op}" for op in (
        "conv2d_1", "depthwise_conv2d_3", "conv2d_5", "dense_9")]
    assert [len(v) for v in saved.values()] == [16, 16, 32, 10]
    assert all(isinstance(c, float) for v in saved.values() for c in v)
    fresh = torch_quantizer("calib", ds_model, x_train[:100], output_dir=str(tmp_path / "fresh"), device=CPU)
    t = torch_quantizer("test", ds_model, x_train[:100], output_dir=str(tmp_path), device=CPU)
    modules = {m.node_name: m for m in weighted_modules(t.quant_model)}
    for m in modules.values():
        # deployed bias = (equalized) float bias - correction; the exporters read the graph: it too
        want = corrected_bias(fresh.graph.node(m.node_name).params["bias"].data, saved[m.node_name])
        assert np.array_equal(m.bias.detach().numpy(), want)
        assert np.array_equal(t.graph.node(m.node_name).params["bias"].data, want)
    calib_biases = {m.node_name: m.bias.detach() for m in weighted_modules(q.quant_model)}
    for name, m in modules.items():
        assert torch.equal(m.bias.detach(), calib_biases[name])
        assert torch.equal(m.weight.detach(), dict(
            (w.node_name, w.weight.detach()) for w in weighted_modules(q.quant_model))[name])
    (tmp_path / BIAS_CORR_FILE).unlink()
    with pytest.raises(MissingFileError) as info:
        torch_quantizer("test", ds_model, x_train[:100], output_dir=str(tmp_path), device=CPU)
    assert info.value.msg_id == "QUANTIZER_TORCH_NO_CALIB_RESULT" and BIAS_CORR_FILE in str(info.value)


def test_steps_off_in_the_config_write_no_bias_file(ds_model, digits, tmp_path):
    q = torch_quantizer("calib", ds_model, digits[0][:100], output_dir=str(tmp_path), device=CPU,
                        quant_config_file=_config(tmp_path, cle=False, bias_corr=False))
    assert q.post_training.cle_pairs == []
    _run(q.quant_model, digits[0][:100])
    q.export_quant_config()
    assert not (tmp_path / BIAS_CORR_FILE).exists()


def test_quant_info_and_bias_file_are_written_together(ds_model, digits, tmp_path, monkeypatch):
    """A failure while the second of the two files is staged leaves neither written."""
    from helpers.fault_injection import fail_on_call
    from nndct_shared import atomic_io
    from nndct_shared.messages import OutputDirError

    q = torch_quantizer("calib", ds_model, digits[0][:100], output_dir=str(tmp_path), device=CPU)
    _run(q.quant_model, digits[0][:100])
    before = sorted(p.name for p in tmp_path.iterdir())
    real = atomic_io.os.fsync
    calls = fail_on_call(monkeypatch, atomic_io.os, "fsync", 2)  # the second of the two files
    with pytest.raises(OutputDirError) as info:
        q.export_quant_config()
    assert info.value.msg_id == "QUANTIZER_TORCH_OUTPUT_DIR" and len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no quant_info.json, no bias_corr.pth
    monkeypatch.setattr(atomic_io.os, "fsync", real)
    q.export_quant_config()
    assert {"quant_info.json", BIAS_CORR_FILE} <= {p.name for p in tmp_path.iterdir()}
