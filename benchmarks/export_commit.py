"""Cost of committing exports as one unit (nndct_shared/export_commit.py) against replacing the
files entry by entry (the AtomicBatch swap the store falls back to without symlinks, which is how
exports were written before).

Two LSTM exports, each into a directory that already holds the previous result:

- `export_xmodel(deploy_check=True)` of a bidirectional LSTM(12, 32) on one sequence of `--steps`
  time steps (2 xmodels, 2 x steps frame directories of ~75 files): the unit replaces them all;
- `export_quant_config()` into a directory holding such an export: a one-file unit whose commit
  hard-links every other file of the directory into the new version.

Both ways run in the same process, interleaved, best of `--repeats`; printed as seconds and the
ratio versioned / entry by entry.

    python benchmarks/export_commit.py [--repeats 5] [--steps 29]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from nndct_shared import export_commit
from pytorch_nndct.apis import torch_quantizer
from timing import best_of


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn = nn.LSTM(12, 32, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def _entry_by_entry(directory: Path) -> None:
    """Make the store of `directory` fall back to the entry-by-entry swap (as without symlinks)."""
    export_commit._degraded_reasons[os.path.abspath(directory / export_commit.STORE_DIR)] = "benchmark"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=29)
    args = parser.parse_args(argv)
    logging.getLogger("nndct").setLevel(logging.ERROR)
    os.environ.setdefault("NNDCT_NO_PROGRESS", "1")
    x = torch.randn(4, args.steps, 12, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        calib = torch_quantizer("calib", Net(), bitwidth=16, lstm=True, output_dir=str(root / "q"), device="cpu")
        calib.quant_model(x)
        calib.export_quant_config()
        test = torch_quantizer("test", Net(), bitwidth=16, lstm=True, output_dir=str(root / "q"), device="cpu")
        test.quant_model(x)
        dirs = {"versioned": root / "versioned", "entry by entry": root / "entries"}
        _entry_by_entry(dirs["entry by entry"])
        for d in dirs.values():
            test.export_xmodel(str(d), deploy_check=True)
        files = 0
        for _, subdirs, names in os.walk(dirs["versioned"], followlinks=True):
            subdirs[:] = [d for d in subdirs if d != export_commit.STORE_DIR]
            files += len(names)
        times: dict[str, dict[str, float]] = {"export_xmodel": {}, "export_quant_config": {}}
        for _ in range(args.repeats):  # interleaved rounds, best of each
            for way, d in dirs.items():
                t = best_of(lambda d=d: test.export_xmodel(str(d), deploy_check=True), 1)
                times["export_xmodel"][way] = min(t, times["export_xmodel"].get(way, t))
        calibs = {}
        for way, d in dirs.items():
            calibs[way] = torch_quantizer("calib", Net(), bitwidth=16, lstm=True, output_dir=str(d), device="cpu")
            calibs[way].quant_model(x)
        for _ in range(args.repeats):
            for way in dirs:
                t = best_of(calibs[way].export_quant_config, 1)
                times["export_quant_config"][way] = min(t, times["export_quant_config"].get(way, t))
    print(f"LSTM(12, 32) bidirectional, {args.steps} steps: {files} files per export directory "
          f"(best of {args.repeats}, interleaved)")
    for what, by_way in times.items():
        ratio = by_way["versioned"] / by_way["entry by entry"]
        print(f"{what:20s} versioned {by_way['versioned'] * 1e3:8.1f} ms   entry by entry "
              f"{by_way['entry by entry'] * 1e3:8.1f} ms   ratio {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
