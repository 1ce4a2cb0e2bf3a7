"""Speed of the quantized LSTM against the float nn.LSTM and torch's observed quantizable LSTM.

IMDB-shaped model of the reference example: batch 50, sequence 500, input 32, hidden 100.
Everything is timed in the same run, best of several repeats, and printed as ratios to the
float `nn.LSTM` forward. Targets (issue 4): test-mode forward <= 2x float, calibration <= 5x.

    python benchmarks/lstm.py [--repeats 5] [--batch 50 --steps 500 --input 32 --hidden 100]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn

from pytorch_nndct.apis import torch_quantizer


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class Net(nn.Module):
    def __init__(self, inp: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(inp, hidden, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--hidden", type=int, default=100)
    a = p.parse_args()
    torch.manual_seed(0)
    model = Net(a.input, a.hidden).eval()
    x = torch.randn(a.batch, a.steps, a.input) * 0.5
    cpu = torch.device("cpu")
    results: dict[str, float] = {}
    with torch.no_grad(), tempfile.TemporaryDirectory() as out:
        results["float nn.LSTM"] = best_of(lambda: model(x), a.repeats)
        calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        results["calib quant_model"] = best_of(lambda: calib.quant_model(x), a.repeats)
        calib.export_quant_config()
        test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        results["test quant_model"] = best_of(lambda: test.quant_model(x), a.repeats)

        qlstm = torch.ao.nn.quantizable.LSTM(a.input, a.hidden, batch_first=True)
        qlstm.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        observed = torch.ao.quantization.prepare(nn.Sequential(qlstm).eval(), inplace=False)
        results["torch.ao quantizable.LSTM (observed)"] = best_of(lambda: observed(x), a.repeats)

    base = results["float nn.LSTM"]
    print(f"shape: batch {a.batch}, steps {a.steps}, input {a.input}, hidden {a.hidden}; "
          f"threads {torch.get_num_threads()}")
    for name, t in results.items():
        print(f"{name:40s} {t * 1e3:9.1f} ms   {t / base:6.2f}x float")


if __name__ == "__main__":
    main()
