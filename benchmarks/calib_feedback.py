"""Cost of calib_feedback="batch" (the default under torch.distributed) against "running".

"batch" observes every activation of a call with a fresh observer, then merges it into the
tensor's observer; "running" observes into the tensor's observer directly. Both calib-mode
forwards are timed in the same run, interleaved (one repeat of each in turn, best of the
repeats), for the CNN benchmark's SmallResNet (diffs, the default config; and the histogram
percentile method with float scales) and for the LSTM benchmark's shape, and printed as the
ratio batch / running.

    python benchmarks/calib_feedback.py [--repeats 7] [--batch 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from cnn import SmallResNet
from lstm import Net
from nndct_shared.config import default_config
from pytorch_nndct.apis import torch_quantizer


def interleaved_best(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds of every call, each repeat running all calls in turn (after one
    warm-up each), so that load on a shared machine hits both sides alike."""
    for fn in calls.values():
        fn()
    best = {name: float("inf") for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    logging.getLogger("nndct").setLevel(logging.WARNING)
    torch.manual_seed(0)
    cnn, lstm = SmallResNet().eval(), Net(32, 100).eval()
    images, sequences = torch.randn(a.batch, 3, 32, 32), torch.randn(50, 100, 32) * 0.5
    with torch.no_grad(), tempfile.TemporaryDirectory() as out:
        percentile = default_config(8, "CPU").to_dict()
        percentile["overall_quantize_config"].update({"scale_type": "float", "method": "percentile",
                                                      "calib_statistic_method": "max"})
        percentile_file = Path(out) / "percentile.json"
        percentile_file.write_text(json.dumps(percentile))
        cases = {"CNN diffs": (cnn, images, {"input_args": images[:1]}),
                 "CNN float percentile": (cnn, images, {"input_args": images[:1],
                                                        "quant_config_file": str(percentile_file)}),
                 "LSTM (batch 50, steps 100)": (lstm, sequences, {"lstm": True, "bitwidth": 16})}
        print(f"threads {a.threads}, best of {a.repeats}, interleaved")
        for name, (model, x, kwargs) in cases.items():
            calls = {}
            for feedback in ("running", "batch"):
                quantizer = torch_quantizer("calib", model, output_dir=f"{out}/{name}/{feedback}", device="cpu",
                                            calib_feedback=feedback, **kwargs)
                calls[feedback] = lambda q=quantizer: q.quant_model(x)
            best = interleaved_best(calls, a.repeats)
            print(f"{name:28s} running {best['running'] * 1e3:8.1f} ms   batch {best['batch'] * 1e3:8.1f} ms"
                  f"   {best['batch'] / best['running']:5.2f}x")


if __name__ == "__main__":
    main()
