"""Calibrate the LSTM example's model on a generator of many short sequences, sampling memory.

Run as a fresh process (`python -m helpers.streaming_calibration N BATCH OUT_DIR`, from tests/)
so that nothing the test process did before affects the numbers. The sequences are real
JapaneseVowels frames (12 LPC coefficients): windows of 4 to 8 consecutive frames cut from the
test set, one after the other, with a small deterministic per-window gain, yielded one at a time
and batched like a DataLoader would. Prints one JSON line: the resident set size (VmRSS) and its
peak (VmHWM) in KiB after every 10 % of the sequences, and how many sequences were calibrated.
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def sequences(frames: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """`count` windows [length, 12] of 4-8 consecutive real frames, cycling over `frames`."""
    flat = frames.reshape(-1, frames.shape[-1])
    flat = flat[np.abs(flat).sum(axis=1) > 0]  # drop the padding frames
    for k in range(count):
        length = 4 + k % 5
        start = (k * 7) % (len(flat) - length)
        yield flat[start:start + length] * np.float32(1.0 + 0.25 * np.sin(k))


def main(argv: list[str]) -> None:
    count, batch_size, out_dir = int(argv[0]), int(argv[1]), argv[2]
    from torch.nn.utils.rnn import pad_sequence

    from helpers.distributed_workers import load_lstm_model
    from helpers.example_files import LSTM_EXAMPLE_DIR, import_example_file
    from pytorch_nndct.apis import torch_quantizer

    torch.set_num_threads(1)
    _, _, x_test, _ = import_example_file("data.py", "lstm_example_data").load_dataset()
    model = load_lstm_model(LSTM_EXAMPLE_DIR / "pytorch" / "pretrained.pth")
    quantizer = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out_dir, device="cpu")
    samples, seen = [], 0
    stream = sequences(x_test, count)
    with torch.no_grad():
        while True:
            chunk = list(itertools.islice(stream, batch_size))
            if not chunk:
                break
            # pre-padding, as the example's data: the last step is real for every sequence
            batch = pad_sequence([torch.from_numpy(s[::-1].copy()) for s in chunk], batch_first=True).flip(1)
            quantizer.quant_model(batch)
            before = seen
            seen += len(chunk)
            if seen * 10 // count != before * 10 // count:
                samples.append({"sequences": seen, "rss": _status_kib("VmRSS"), "peak": _status_kib("VmHWM")})
    quantizer.export_quant_config()
    print(json.dumps({"samples": samples, "calibrated": seen}))


if __name__ == "__main__":
    main(sys.argv[1:])
