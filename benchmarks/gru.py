"""Speed of the quantized GRU against the float nn.GRU, at a few shapes.

For each shape: float `nn.GRU` forward, test-mode `quant_model` (the integer datapath in C++)
and calibration-mode `quant_model` (the fake-quantized float cell with the per-step diffs
search), all timed in the same run, interleaved shape by shape, best of several repeats, and
printed as ratios to the float forward. Targets (issue 18): test mode <= 1.5x float nn.GRU
(<= 1.0x at batch 1), calibration <= 3x.

--grid: the LSTM grid's shapes (benchmarks/lstm.py --grid: batch-1 streaming, hidden 100..512,
stacked and bidirectional), one table with float nn.GRU, PyTorch test mode and calibration, and
the Keras quant_model of the same weights (keras GRU, reset_after=True), every ratio to float
nn.GRU, the worst point and the targets missed. Contenders of a shape are interleaved (one call
each per round), best of --repeats.

    python benchmarks/gru.py [--repeats 5] [--shapes imdb,kws,vowels] [--threads N] [--reset-before]
    python benchmarks/gru.py --grid [--threads 1] [--repeats 5] [--no-keras]

`--threads N` gives both sides N threads (torch.set_num_threads and NNDCT_NUM_THREADS); on a
machine shared with other jobs, 1 thread is the comparison least distorted by the load (torch's
intra-op threads wait on each other at every time step).

`--reset-before` also times a Keras-style reset-before cell (no PyTorch float counterpart: the
ratio is still to nn.GRU of the same shape).
"""
from __future__ import annotations

import argparse
import os
import tempfile

import torch
from torch import nn

from nndct_shared.gru.cell_params import GruCellWeights
from nndct_shared.gru.stack import QuantizedGruStack
from nndct_shared.quant_mode import RunMode
from pytorch_nndct.apis import torch_quantizer
from lstm import run_grid, set_threads
from timing import best_of

SHAPES = {  # name: (batch, steps, input, hidden)
    "imdb": (50, 500, 32, 100),    # the reference example's shape
    "kws": (64, 100, 40, 128),     # keyword spotting: 1 s of 10 ms MFCC frames
    "vowels": (50, 29, 12, 32),    # the GRU example (JapaneseVowels)
}


class Net(nn.Module):
    def __init__(self, inp: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(inp, hidden, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


def reset_before_times(model: Net, x: torch.Tensor, repeats: int) -> dict[str, float]:
    """The same weights as a reset-before stack (its own graph), calibrated then in test mode."""
    g = model.gru
    w = GruCellWeights.from_arrays(g.weight_ih_l0.detach().numpy(), g.weight_hh_l0.detach().numpy(),
                                   g.bias_ih_l0.detach().numpy(), None, reset_after=False)
    stack = QuantizedGruStack("Gru", [[w]], 16)
    xn = x.double().numpy()
    out = {"calib reset-before stack": best_of(lambda: stack.forward(xn, mode=RunMode.CALIB), repeats)}
    for cell in stack.cells:
        cell.load_fix_positions(cell.calibration.aligned())
    out["test reset-before stack"] = best_of(lambda: stack.forward(xn), repeats)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {list(SHAPES)}")
    p.add_argument("--reset-before", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="threads for both sides (default: torch's)")
    p.add_argument("--grid", action="store_true", help="time the LSTM grid's shapes and print one table")
    p.add_argument("--no-keras", action="store_true", help="--grid without the Keras timings")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if a.threads:
        set_threads(a.threads)
    if a.grid:
        run_grid(a.repeats, not a.no_keras, kind="gru")
        return
    cpu = torch.device("cpu")
    print(f"threads {torch.get_num_threads()}; best of {a.repeats}")
    for name in a.shapes.split(","):
        batch, steps, inp, hidden = SHAPES[name]
        torch.manual_seed(0)
        model = Net(inp, hidden).eval()
        x = torch.randn(batch, steps, inp) * 0.5
        results: dict[str, float] = {}
        with torch.no_grad(), tempfile.TemporaryDirectory() as out:
            results["float nn.GRU"] = best_of(lambda: model(x), a.repeats)
            calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
            results["calib quant_model"] = best_of(lambda: calib.quant_model(x), a.repeats)
            calib.export_quant_config()
            test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
            results["test quant_model"] = best_of(lambda: test.quant_model(x), a.repeats)
            results["float nn.GRU (again)"] = best_of(lambda: model(x), a.repeats)
            if a.reset_before:
                results.update(reset_before_times(model, x, a.repeats))
        base = min(results["float nn.GRU"], results["float nn.GRU (again)"])
        print(f"\n{name}: batch {batch}, steps {steps}, input {inp}, hidden {hidden}")
        for label, t in results.items():
            print(f"  {label:28s} {t * 1e3:9.1f} ms   {t / base:6.2f}x float nn.GRU")


if __name__ == "__main__":
    main()
