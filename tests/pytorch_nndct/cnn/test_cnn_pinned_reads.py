"""Test mode reads quant_info.json and bias_corr.pth from ONE version of output_dir (issue 13):
another calibration committed between the two reads cannot pair this quant_info.json with its
bias corrections. The race is made to happen: a hook commits the other calibration right after
quant_info.json was read."""
from __future__ import annotations

import torch

from nndct_shared.export_commit import export_unit
from nndct_shared.quant_info_store import QuantInfoStore
from quant_flow import calibrate, test_quantizer

FILES = ("quant_info.json", "bias_corr.pth")


def _state(quantizer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in quantizer.quant_model.state_dict().items()}


def test_bias_corr_is_read_from_the_version_quant_info_came_from(digits_mlp, digits, tmp_path, monkeypatch):
    out, other = tmp_path / "out", tmp_path / "other"
    calibrate(digits_mlp, digits[0][:100], out)  # bias correction is on by default
    calibrate(digits_mlp, digits[0][100:300], other)  # other data: other corrections
    theirs = {name: (other / name).read_bytes() for name in FILES}
    assert theirs["bias_corr.pth"] != (out / "bias_corr.pth").read_bytes()
    want = _state(test_quantizer(digits_mlp, digits[2], out))  # no race: this calibration's model
    read = QuantInfoStore.load_record

    def read_then_another_run_commits(store):
        record = read(store)
        with export_unit(out) as unit:  # a concurrent calibration's commit, between the two reads
            for name, data in theirs.items():
                unit.write_bytes(out / name, data)
        return record

    monkeypatch.setattr(QuantInfoStore, "load_record", read_then_another_run_commits)
    got = _state(test_quantizer(digits_mlp, digits[2], out))
    assert all((out / name).read_bytes() == theirs[name] for name in FILES)  # the race happened
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    monkeypatch.undo()
    # the other calibration's pair, read as a pair, gives another model: the check can fail
    changed = _state(test_quantizer(digits_mlp, digits[2], out))
    assert any(not torch.equal(changed[k], want[k]) for k in want)
