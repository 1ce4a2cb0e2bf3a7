"""The catalogued failures of calibration under torch.distributed, on two gloo ranks.

Every rank must raise the same catalogued error, and nothing of the failed export may be
written: ranks that quantize different configurations (DIST_MISMATCH), the reference's running
feedback on several ranks (CALIB_FEEDBACK), no rank that calibrated anything (NO_CALIBRATION),
fast finetune on several ranks (DIST_FAST_FINETUNE), calibrating on after a merge
(DIST_CALIB_AFTER_EXPORT), rank 0 exporting in test mode without a forward pass (NO_FORWARD;
rank 1 writes nothing and returns None), and a rank that never reaches export_quant_config()
(DIST_TIMEOUT on rank 0 after the process group's timeout, naming the missing rank).
"""
from __future__ import annotations

import pytest

from helpers.distributed_ranks import files_under, save_digits_cnn, spawn_ranks, write_config
from helpers.distributed_workers import errors_worker
from nndct_shared.config import default_config

TIMEOUT_S = 6.0


def _config(workdir, name, bit_width):
    data = default_config(bit_width, "DPU" if bit_width == 8 else "CPU").to_dict()
    data["include_cle"] = data["include_bias_corr"] = False
    return write_config(workdir / name, data)


@pytest.fixture(scope="module")
def error_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dist_errors")
    save_digits_cnn(workdir, epochs=1, samples=200)
    spec = {"config": _config(workdir, "plain8.json", 8), "config_6bit": _config(workdir, "plain6.json", 6),
            "cnn_shards": [[(0, 60), (60, 120)], [(120, 200)]], "timeout_s": TIMEOUT_S}
    return workdir, spawn_ranks(errors_worker, 2, workdir, spec, timeout_s=TIMEOUT_S)


@pytest.mark.parametrize("case, code", [("mismatch", "DIST_MISMATCH"), ("running", "CALIB_FEEDBACK"),
                                        ("nothing", "NO_CALIBRATION"), ("finetune", "DIST_FAST_FINETUNE"),
                                        ("again", "DIST_CALIB_AFTER_EXPORT")])
def test_every_rank_raises_the_same_error_and_nothing_is_written(error_run, case, code):
    workdir, results = error_run
    assert [r[case] for r in results] == [f"QUANTIZER_TORCH_{code}"] * 2
    if case != "again":  # "again" exported twice before the failing third call
        assert "quant_info.json" not in files_under(workdir / case / "rank0")
    assert not (workdir / case / "rank1").exists()


def test_rank_0_without_a_forward_pass_cannot_export(error_run):
    workdir, results = error_run
    assert results[0]["test_export"] == "QUANTIZER_TORCH_NO_FORWARD"
    assert results[1]["test_export"] is None  # rank 1 ran one but writes nothing
    assert not (workdir / "test_export").exists()


def test_a_rank_that_never_arrives_times_out(error_run):
    workdir, results = error_run
    assert results[0]["timeout"] == "QUANTIZER_TORCH_DIST_TIMEOUT"
    assert TIMEOUT_S - 1 <= results[0]["timeout_s"] < TIMEOUT_S + 10
    assert "quant_info.json" not in files_under(workdir / "timeout" / "rank0")
