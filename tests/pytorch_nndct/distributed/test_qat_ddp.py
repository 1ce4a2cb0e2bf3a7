"""QAT under DistributedDataParallel on two gloo ranks, each training on its own batches.

The learnable thresholds are parameters: the first forward pass initializes each one from the
merged observers of both ranks' batches (rank 1's are brighter, so its batch alone would give
other fix positions), and DDP's averaged gradients keep them equal, so after
training every rank holds bit-identical thresholds and weights. `to_deployable(ddp_model)`
accepts the DDP wrapper; rank 0 writes quant_info.json / deployable.pth (matching the learned
fix positions), rank 1 writes nothing, and on every rank the deployable model computes exactly
what the trained model computes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from helpers.distributed_ranks import files_under, spawn_ranks
from helpers.distributed_workers import qat_worker
from nndct_shared.quant_info_v3 import read_record
from pytorch_nndct.qat.tqt import log2_threshold_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "qat"))
import qat_models  # noqa: E402


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("qat_ddp")
    x, y, x_test, _ = qat_models.digits()
    torch.manual_seed(0)
    model = qat_models.ResNetlet()
    qat_models.train(model, torch.optim.Adam(model.parameters(), lr=5e-3), x[:700], y[:700], epochs=3)
    torch.save(model.state_dict(), workdir / "float.pt")
    for name, value in (("x", x[:512]), ("y", y[:512]), ("x_test", x_test[:100])):
        torch.save(value.clone(), workdir / f"{name}.pt")
    spec = {"shards": [[(0, 64), (64, 128), (128, 192), (192, 256)],
                       [(256, 320), (320, 384), (384, 448), (448, 512)]],
            "scales": [1.0, 4.0]}  # rank 1's images are brighter: its first batch alone would
    # initialize other thresholds than rank 0's
    return workdir, spawn_ranks(qat_worker, 2, workdir, spec)


def test_thresholds_and_weights_are_identical_on_every_rank(ddp_run):
    _, (first, second) = ddp_run
    assert first["first_fix"] == second["first_fix"]  # initialized alike from both ranks' batches
    assert first["thresholds"].keys() == second["thresholds"].keys()
    for name, value in first["thresholds"].items():
        assert torch.equal(value, second["thresholds"][name]), name
    for name, value in first["weights"].items():
        assert torch.equal(value, second["weights"][name]), name
    assert first["fix"] == second["fix"]
    # training moved thresholds away from where they started (the copies are not untouched)
    assert any(float(value) != log2_threshold_for(first["first_fix"][name], 8)
               for name, value in first["thresholds"].items())


def test_to_deployable_matches_on_every_rank(ddp_run):
    workdir, results = ddp_run
    written = files_under(workdir / "qat" / "rank0")
    assert {"quant_info.json", "deployable.pth"} <= set(written)
    assert not (workdir / "qat" / "rank1").exists()
    info = read_record(workdir / "qat" / "rank0" / "quant_info.json").info  # the 3.x file
    recorded = {name: fp for table in (info.param, info.output) for name, (_, fp) in table.items()}
    for result in results:
        assert recorded == result["fix"]
        assert torch.equal(result["deployable_out"], result["trained_out"])
    assert torch.equal(results[0]["deployable_out"], results[1]["deployable_out"])
