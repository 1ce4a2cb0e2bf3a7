"""The Keras CNN flow's bias correction walks the graph once (float and quantized side by side)
and gives exactly the results of recomputing the graph up to each corrected node: the
corrections, the errors left, the corrected biases and their fix positions (on the residual
twin, calibrated on real digits images, at 8 and at 4 bits)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import twins
from tf_nndct.cnn import bias_correction
from tf_nndct.quantization.api import tf_quantizer


@pytest.mark.parametrize("bit_width", [8, 4])
def test_one_pass_equals_recomputing_each_node(tmp_path, bit_width):
    torch.manual_seed(1)
    torch_model = twins.ResNet2d().eval()
    twins.randomize_bn(torch_model, 2)
    model = twins.resnet2d_keras(torch_model)
    images = twins.digits_images(200)
    found = {}
    for how in ("walk", "recompute"):
        q = tf_quantizer(model, None, "calib", str(tmp_path / how), bitwidth=bit_width)
        for start in range(0, 200, 50):
            q.quant_model(images[start:start + 50])
        if how == "walk":
            results, corrected = bias_correction.correct_biases(q.session, q.runtime, q.engine.recorded)
        else:
            results, corrected = bias_correction._correct_biases_by_recomputing(
                q.session, q.runtime, q.engine.recorded, dict(q.runtime.calibrated()))
        biases = {n.name: n.params["bias"].data.copy() for n in q.session.graph if "bias" in n.params}
        found[how] = (results, corrected, biases, q.runtime.calibrated())
    (walk, walk_corr, walk_bias, walk_fix), (again, again_corr, again_bias, again_fix) = found["walk"], found["recompute"]
    assert [r.node for r in walk] == [r.node for r in again] and len(walk) >= 4
    for a, b in zip(walk, again):
        assert a.error_before.tobytes() == b.error_before.tobytes(), a.node
        assert a.error_after.tobytes() == b.error_after.tobytes(), a.node
        assert np.abs(a.error_before).max() > 0  # something was corrected
    assert walk_corr.keys() == again_corr.keys()
    assert all(walk_bias[k].tobytes() == again_bias[k].tobytes() for k in walk_bias)
    assert walk_fix == again_fix


def test_a_walk_that_would_not_fit_recomputes(tmp_path, monkeypatch):
    """Where the walk's values would not fit in memory, the correction recomputes (same results)."""
    calls = []
    original = bias_correction._correct_biases_by_recomputing

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(bias_correction, "walk_fits", lambda graph, samples: False)
    monkeypatch.setattr(bias_correction, "_correct_biases_by_recomputing", spy)
    torch.manual_seed(1)
    model = twins.resnet2d_keras(twins.ResNet2d().eval())
    q = tf_quantizer(model, None, "calib", str(tmp_path))
    q.quant_model(twins.digits_images(50))
    q.export_quant_config()
    assert calls == [1] and (tmp_path / bias_correction.BIAS_CORR_FILE).is_file()
