"""GRU calibration on several gloo ranks equals one process calibrating on the union of the shards.

Three ranks with disjoint shards of unequal size (rank 2's is empty) calibrate the GRU example's
classifier (JapaneseVowels, shipped checkpoint) and a model with an LSTM and a bidirectional GRU.
The files rank 0 writes (quant_info.json and the cells' modules) must be byte-identical to those
of one process that calibrated on every batch in rank order with calib_feedback="batch" (the
default under torch.distributed), every rank must end with the same fix positions, and no other
rank may write anything.
"""
from __future__ import annotations

import json

import pytest
import torch

from helpers.distributed_ranks import files_under, spawn_ranks
from helpers.distributed_workers import calibrate_rnn, rnn_union_worker
from helpers.example_files import GRU_EXAMPLE_DIR, import_example_file
from helpers.rnn_models import LstmGruClassifier

WORLD = 3
SHARDS = [[(0, 40), (40, 70)], [(70, 90), (90, 120)], []]
KINDS = ("gru", "mixed")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rnn_union")
    _, _, x_test, _ = import_example_file("data.py", "lstm_example_data").load_dataset()
    torch.save(torch.from_numpy(x_test[:120].copy()), workdir / "seq_x.pt")
    torch.save(torch.load(GRU_EXAMPLE_DIR / "pytorch" / "pretrained.pth", weights_only=True), workdir / "gru.pt")
    torch.manual_seed(7)
    torch.save(LstmGruClassifier().state_dict(), workdir / "mixed.pt")
    spec = {"kinds": KINDS, "shards": SHARDS}
    results = spawn_ranks(rnn_union_worker, WORLD, workdir, spec)
    single = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks
    try:
        for kind in KINDS:
            quantizer = calibrate_rnn(kind, workdir, workdir / "single" / kind,
                                      [b for shard in SHARDS for b in shard], calib_feedback="batch")
            quantizer.export_quant_config()
            single[kind] = [cell.calibration.aligned() for cell in quantizer.session.cells]
    finally:
        torch.set_num_threads(threads)
    return workdir, results, single


@pytest.mark.parametrize("kind", KINDS)
def test_gru_calibration_equals_one_process(runs, kind):
    workdir, results, single = runs
    written = files_under(workdir / kind / "rank0")
    assert "quant_info.json" in written and written == files_under(workdir / "single" / kind)
    graphs = {key.split("::")[0] for key in json.loads(written["quant_info.json"])["output"]}
    expected = {"Gru_StandardGruCell_layer_0_forward"} if kind == "gru" else {
        "Lstm_StandardLstmCell_layer_0_forward", "Gru_StandardGruCell_layer_0_forward",
        "Gru_StandardGruCell_layer_0_backward"}
    assert graphs == expected
    assert results[0]["returned"][kind] == workdir / kind / "rank0" / "quant_info.json"
    for rank in (1, 2):
        assert not (workdir / kind / f"rank{rank}").exists()
        assert results[rank]["returned"][kind] is None
    for result in results:  # every rank ends with the merged fix positions
        assert result["fix"][kind] == single[kind]
