"""The LSTM example on 3 processes with torchrun (--distributed) writes what one process writes.

100 test sequences in batches of 50 give 2 batches, so rank 2 calibrates and evaluates nothing.
Calibration on 3 processes must write the quant_info.json of one process run with
--calib_feedback batch, and test mode with --deploy the same xmodel and per-frame dumps,
byte for byte; the accuracies printed by rank 0 are those of all the sequences.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from helpers.distributed_ranks import files_under
from helpers.example_files import LSTM_EXAMPLE_DIR

COMMON = ["--subset_len", "100", "--batch_size", "50"]


def _torchrun(*args: str, cwd) -> str:
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "3",
                          str(LSTM_EXAMPLE_DIR / "pytorch" / "quantize_lstm.py"), "--distributed", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run.stdout


def _files(directory):
    return files_under(directory)


def test_torchrun_calibration_and_export_equal_one_process(tmp_path, capsys, import_example):
    pytest.importorskip("pytorch_nndct.apis")
    script = import_example("pytorch/quantize_lstm.py", "lstm_example_torch_quantize")
    single, dist = tmp_path / "single", tmp_path / "dist"
    out = _torchrun("--quant_mode", "calib", *COMMON, "--output_dir", str(dist), cwd=tmp_path)
    assert out.count("quantized accuracy") == 1 and "with 3 processes" in out  # rank 0 prints
    assert script.main(["--quant_mode", "calib", *COMMON, "--calib_feedback", "batch",
                        "--output_dir", str(single)]) == 0
    one = capsys.readouterr().out
    assert one.splitlines()[-1] == out.strip().splitlines()[-1]  # the same accuracy line
    assert _files(dist) == _files(single)

    _torchrun("--quant_mode", "test", "--deploy", *COMMON, "--output_dir", str(dist), cwd=tmp_path)
    assert script.main(["--quant_mode", "test", "--deploy", *COMMON, "--output_dir", str(single)]) == 0
    written = _files(dist)
    assert any(name.startswith("deploy_check_data_int/") for name in written)
    assert written == _files(single)
