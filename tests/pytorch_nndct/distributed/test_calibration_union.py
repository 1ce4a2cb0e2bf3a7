"""Calibration on several gloo ranks equals one process calibrating on the union of the shards.

Three ranks with shards of unequal size (rank 2's is empty) calibrate a digits CNN with every
calibration method the CNN flow's config accepts (diffs, per-channel weights, maxmin, float
scales with maxmin max/mean/median and percentile, and power-of-two scales with percentile /
mse / entropy under the median / mean / max statistics; CLE on, as the guide's defaults, and
bias correction in two of them, where rank 1's shard crosses its 512-sample limit; every
observer's merge is also checked on its own in tests/nndct_shared/calibration/test_merge.py)
and the LSTM example's model on JapaneseVowels. The files rank 0 writes must be
byte-identical to those of one process that calibrated on every batch in rank order with
calib_feedback="batch" (the default under torch.distributed), every rank must end with the
same fix positions, and no other rank may write anything. Then test mode and every export run
on every rank: again only rank 0 writes, the same bytes as one process.
"""
from __future__ import annotations

import pytest
import torch

from helpers.distributed_ranks import cnn_models, files_under, save_digits_cnn, spawn_ranks, write_config
from helpers.distributed_workers import load_lstm_model, union_worker
from helpers.example_files import LSTM_EXAMPLE_DIR, import_example_file
from nndct_shared.config import default_config
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")
WORLD = 3
CNN_BATCHES = [(0, 100), (100, 200), (200, 300), (300, 400), (400, 500), (500, 600), (600, 700)]
# rank 0: 300 samples; rank 1: 400 (the bias-correction sample cap, 512, falls inside its third
# batch); rank 2: nothing
CNN_SHARDS = [CNN_BATCHES[:3], CNN_BATCHES[3:], []]
BATCH_SCALES = [1.0, 0.5, 2.0, 3.0, 0.75, 1.5, 4.0]
LSTM_SHARDS = [[(0, 50), (50, 100), (100, 130)], [(130, 170)], []]


def _config(workdir, name, weights=None, bias_corr=False, **activation):
    # target CPU: the DPU target allows only the modal statistic for activations
    data = default_config(8, "CPU").to_dict()
    data["include_bias_corr"] = bias_corr  # on in two cases only: it is the slow part
    scale = activation.pop("scale_type", None)
    if scale:
        data["overall_quantize_config"].update({"scale_type": scale, "method": "maxmin",
                                                "calib_statistic_method": "max"})
    data["tensor_quantize_config"]["activation"].update(activation)
    if weights:
        data["tensor_quantize_config"]["weights"] = weights
    return write_config(workdir / f"{name}.json", data)


@pytest.fixture(scope="module")
def union_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("union")
    save_digits_cnn(workdir, epochs=4, samples=700)
    # batches of different ranges, so that the per-batch votes of the statistics differ between
    # the shards and a merge that dropped or reordered a rank's votes would show
    x = torch.load(workdir / "cnn_x.pt", weights_only=True)
    for (start, stop), scale in zip(CNN_BATCHES, BATCH_SCALES):
        x[start:stop] *= scale
    torch.save(x, workdir / "cnn_x.pt")
    _, _, x_test, _ = import_example_file("data.py", "lstm_example_data").load_dataset()
    torch.save(torch.from_numpy(x_test[:170].copy()), workdir / "lstm_x.pt")
    torch.save(torch.load(LSTM_EXAMPLE_DIR / "pytorch" / "pretrained.pth", weights_only=True), workdir / "lstm.pt")
    cases = {  # every method the CNN flow's config accepts today
        "diffs": _config(workdir, "diffs", bias_corr=True),
        "diffs_per_channel": _config(workdir, "diffs_per_channel", weights={"per_channel": True}),
        "maxmin": _config(workdir, "maxmin", method="maxmin"),
        "float_max": _config(workdir, "float_max", scale_type="float"),
        "float_mean": _config(workdir, "float_mean", scale_type="float", calib_statistic_method="mean",
                              bias_corr=True),
        "float_median": _config(workdir, "float_median", scale_type="float", calib_statistic_method="median"),
        "float_percentile": _config(workdir, "float_percentile", scale_type="float", method="percentile",
                                    percentage=99.9, symmetry=False),
        # power-of-two scales with the histogram methods (issue 17's config), one statistic each
        "pow2_percentile": _config(workdir, "pow2_percentile", method="percentile", percentage=99.9,
                                   calib_statistic_method="median"),
        "pow2_mse": _config(workdir, "pow2_mse", method="mse", calib_statistic_method="mean"),
        "pow2_entropy": _config(workdir, "pow2_entropy", method="entropy", calib_statistic_method="max"),
    }
    spec = {"cases": cases, "cnn_shards": CNN_SHARDS, "lstm_shards": LSTM_SHARDS, "test_case": "diffs",
            "export_sample": 5}
    results = spawn_ranks(union_worker, WORLD, workdir, spec)
    return workdir, spec, results


@pytest.fixture(scope="module")
def one_process(union_run):
    """The same calibrations in this process, on every batch in rank order."""
    workdir, spec, _ = union_run
    single = workdir / "single"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: float results then match bit for bit
    try:
        models = cnn_models()
        model = models.DigitsCNN()
        model.load_state_dict(torch.load(workdir / "cnn.pt", weights_only=True))
        x = torch.load(workdir / "cnn_x.pt", weights_only=True)
        fix_pos = {}
        for case, config in spec["cases"].items():
            quantizer = torch_quantizer("calib", model.eval(), x[:1], output_dir=str(single / case), device=CPU,
                                        quant_config_file=config, calib_feedback="batch")
            with torch.no_grad():
                for shard in CNN_SHARDS:
                    for start, stop in shard:
                        quantizer.quant_model(x[start:stop])
            quantizer.export_quant_config()
            fix_pos[case] = quantizer.runtime.calibrated()
        tester = torch_quantizer("test", model.eval(), x[:1], output_dir=str(single / "diffs"), device=CPU,
                                 quant_config_file=spec["cases"]["diffs"])
        with torch.no_grad():
            tester.quant_model(x[5:6])
        exports = single / "cnn_exports"
        tester.export_xmodel(str(exports), deploy_check=True)
        tester.export_onnx_model(str(exports))

        x_seq = torch.load(workdir / "lstm_x.pt", weights_only=True)
        quantizer = torch_quantizer("calib", load_lstm_model(workdir / "lstm.pt"), bitwidth=16, lstm=True,
                                    output_dir=str(single / "lstm"), device=CPU, calib_feedback="batch")
        with torch.no_grad():
            for shard in LSTM_SHARDS:
                for start, stop in shard:
                    quantizer.quant_model(x_seq[start:stop])
        quantizer.export_quant_config()
        lstm_fix = [cell.calibration.aligned() for cell in quantizer.session.cells]
        tester = torch_quantizer("test", load_lstm_model(workdir / "lstm.pt"), bitwidth=16, lstm=True,
                                 output_dir=str(single / "lstm"), device=CPU)
        with torch.no_grad():
            tester.quant_model(x_seq[0:50])
        tester.export_xmodel(str(single / "lstm_exports"), deploy_check=True)
    finally:
        torch.set_num_threads(threads)
    return single, fix_pos, lstm_fix


def test_every_method_equals_one_process(union_run, one_process):
    workdir, spec, results = union_run
    single, fix_pos, _ = one_process
    for case in spec["cases"]:
        written = files_under(workdir / case / "rank0")
        assert "quant_info.json" in written, case
        assert ("bias_corr.pth" in written) == (case in ("diffs", "float_mean")), case
        assert written == files_under(single / case), case
        for rank in (1, 2):
            assert not (workdir / case / f"rank{rank}").exists(), (case, rank)
            assert results[rank]["returned"][case] is None
        assert results[0]["returned"][case] == workdir / case / "rank0" / "quant_info.json"
        for result in results:  # every rank ends with the merged fix positions
            assert result["cnn"][case] == fix_pos[case], case
    float_files = [case for case in spec["cases"] if "quant_info_float.json" in files_under(single / case)]
    assert float_files == ["float_max", "float_mean", "float_median", "float_percentile"]
    # bias correction changed the biases alike on every rank
    states = [r["corrected_state"] for r in results]
    for key, value in states[0].items():
        assert all(torch.equal(value, other[key]) for other in states[1:]), key


def test_lstm_equals_one_process(union_run, one_process):
    workdir, _, results = union_run
    single, _, lstm_fix = one_process
    written = files_under(workdir / "lstm" / "rank0")
    assert "quant_info.json" in written and written == files_under(single / "lstm")
    for rank in (1, 2):
        assert not (workdir / "lstm" / f"rank{rank}").exists()
        assert results[rank]["returned"]["lstm"] is None
    for result in results:
        assert result["lstm"] == lstm_fix


def test_test_mode_exports_only_on_rank_0(union_run, one_process):
    workdir, _, results = union_run
    single, _, _ = one_process
    for rank in (1, 2):
        assert results[rank]["returned"]["test"] == [None, None, None]
        assert results[rank]["returned"]["lstm_test"] == []
        for flow in ("cnn", "lstm"):  # nothing but the copies the test put there
            assert sorted(files_under(workdir / f"test_{flow}" / f"rank{rank}")) == results[rank]["before_test"][flow]
            assert not (workdir / f"{flow}_exports" / f"rank{rank}").exists()
    exported = files_under(workdir / "cnn_exports" / "rank0")
    expected = files_under(single / "cnn_exports")
    assert {name for name in exported if not name.endswith(".pt")} == set(expected)
    assert any(name.endswith(".pt") for name in exported)  # TorchScript (not compared: zip metadata)
    assert all(exported[name] == data for name, data in expected.items())
    lstm_exported = files_under(workdir / "lstm_exports" / "rank0")
    assert lstm_exported and lstm_exported == files_under(single / "lstm_exports")
