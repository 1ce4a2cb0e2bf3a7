"""Memory does not grow with the calibration set: every statistic is streaming.

A fresh process calibrates the LSTM example's model on a generator of 100,000 short sequences
of real JapaneseVowels frames (4-8 steps, batches of 25: 4,000 forward calls, 24,000+ time
steps per cell), sampling its peak resident memory after every 10 %. From the first sample on,
the peak may not rise by more than 2 MiB: a history that kept anything per call (one small int
per node and step would take about 6 MiB here) fails this. (The observers of the CNN flow are
checked for constant state size in tests/nndct_shared/calibration/test_merge.py.)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
SEQUENCES = 100_000


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmHWM from /proc")
def test_peak_memory_is_flat_over_100000_sequences(tmp_path):
    run = subprocess.run([sys.executable, "-m", "helpers.streaming_calibration", str(SEQUENCES), "25",
                          str(tmp_path / "out")], cwd=TESTS_DIR, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    samples = report["samples"]
    assert report["calibrated"] == SEQUENCES and len(samples) == 10
    growth_kib = samples[-1]["peak"] - samples[0]["peak"]
    print(f"peak RSS after 10 %: {samples[0]['peak']} KiB, after 100 %: {samples[-1]['peak']} KiB")
    assert growth_kib <= 2048, samples
    assert (tmp_path / "out" / "quant_info.json").is_file()
