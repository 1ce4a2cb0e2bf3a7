"""Times fix_neuron on 16M float32 values against torch's fake-quantize op and a plain copy.

Why these baselines: ``torch.fake_quantize_per_tensor_affine`` (scale 2^-fp, zero point 0,
range -32768..32767) is what a PyTorch user would otherwise call, and ``np.copyto`` is the
memory-bandwidth floor (read n, write n). Target: no slower than torch, within 2x of the copy.

Run: ``python benchmarks/kernels.py [--n N] [--repeats R]`` (torch is optional).
"""
from __future__ import annotations

import argparse

import numpy as np

from nndct_shared import kernels
from timing import best_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16 * 1024 * 1024, help="number of float32 values")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--fix-pos", type=int, default=12)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.n) * 4).astype(np.float32)
    out = np.empty_like(x)
    fp = args.fix_pos

    copy_t = best_of(lambda: np.copyto(out, x), args.repeats)
    print(f"n = {args.n}, threads = {kernels.max_threads()}, fix_pos = {fp}, bit_width = 16")
    print(f"np.copyto                         {copy_t * 1e3:8.2f} ms")

    torch_t = None
    try:
        import torch

        xt = torch.from_numpy(x)
        torch_t = best_of(
            lambda: torch.fake_quantize_per_tensor_affine(xt, 2.0**-fp, 0, -32768, 32767), args.repeats
        )
        print(f"torch.fake_quantize_per_tensor    {torch_t * 1e3:8.2f} ms  (torch threads {torch.get_num_threads()})")
    except ImportError:
        print("torch not installed: skipping the torch baseline")

    for method in (2, 3, 4):
        t = best_of(lambda: kernels.fix_neuron(x, 16, fp, method, out=out), args.repeats)
        line = f"fix_neuron method {method}              {t * 1e3:8.2f} ms  {t / copy_t:5.2f}x copy"
        if torch_t is not None:
            line += f"  {t / torch_t:5.2f}x torch"
        print(line)
    y = x.copy()
    t = best_of(lambda: kernels.fix_neuron(y, 16, fp, 3, out=y), args.repeats)
    print(f"fix_neuron method 3 in place      {t * 1e3:8.2f} ms  {t / copy_t:5.2f}x copy")
    t = best_of(lambda: kernels.fix_codes(x, 16, fp, 3), args.repeats)
    print(f"fix_codes method 3 (int16)        {t * 1e3:8.2f} ms")
    t = best_of(lambda: kernels.diffs_fix_pos(x, 16), max(1, args.repeats // 3))
    print(f"diffs_fix_pos (range 5, method 2) {t * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
