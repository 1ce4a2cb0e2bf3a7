"""Speed of the CNN flow's quantized model against the float model and torch.ao's FX quantization,
and of its accuracy tools (bias correction, fast finetune) against the passes they add to.

A small residual CNN (conv+BN+relu stem, two residual blocks with `+`, a depthwise conv, pooling,
linear) on a batch of 3x32x32 images. Everything is timed in the same run, best of several
repeats, and printed as ratios:

- calib-mode `quant_model` (observers + fake quantization of every tensor) against torch.ao's
  `prepare_fx` model with its default x86 observers (what a user calibrates with otherwise);
- test-mode `quant_model` (fake quantization through the fix ops) against torch.ao's
  `convert_fx` int8 model (real quantized kernels, a different thing: it is the fastest int8 path
  torch offers on the CPU, shown for scale);
- `export_quant_config()` with bias correction on (the default) against the calibration pass it
  follows (`--calib-images` images in batches of `--batch`; the target is at most 2x): each
  repeat calibrates a fresh quantizer, then times both, interleaved;
- `fast_finetune()` on `--ft-images` images, per image, against the float forward per image.

    python benchmarks/cnn.py [--repeats 5] [--batch 64] [--threads 2] [--calib-images 64]
                             [--ft-images 256] [--ft-repeats 1]
    python benchmarks/cnn.py --bc-grid [--repeats 3]   # the ratio over widths, sizes, batches, bits
"""
from __future__ import annotations

import argparse
import copy
import logging
import tempfile
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from pytorch_nndct.apis import torch_quantizer
from timing import best_of


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + x)


class SmallResNet(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width)
        self.block1, self.block2 = Block(width), Block(width)
        self.dw = nn.Conv2d(width, width, 3, stride=2, padding=1, groups=width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.dw(self.block2(self.block1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def _forward_all(model: nn.Module, images: torch.Tensor, batch: int) -> None:
    """The user's loop: the model over `images` in batches (a calibration pass in calib mode)."""
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model(images[i:i + batch])


def time_bias_correction(model: nn.Module, images: torch.Tensor, batch: int, repeats: int,
                         bit_width: int = 8) -> dict[str, float]:
    """Best of `repeats` (after a warm-up) of the calibration pass and of export_quant_config()
    with bias correction, measured on the same fresh quantizer each time."""
    calib_times, export_times = [], []
    for r in range(repeats + 1):
        with tempfile.TemporaryDirectory() as out:
            q = torch_quantizer("calib", model, images[:batch], output_dir=out, bitwidth=bit_width,
                                device=torch.device("cpu"))
            start = time.perf_counter()
            _forward_all(q.quant_model, images, batch)
            middle = time.perf_counter()
            q.export_quant_config()
            end = time.perf_counter()
        if r:  # the first round warms up
            calib_times.append(middle - start)
            export_times.append(end - middle)
    return {"calibration pass": min(calib_times), "export_quant_config (bias correction)": min(export_times)}


def bias_correction_grid(images: int, repeats: int) -> None:
    """export_quant_config() with bias correction against the calibration pass over a grid of
    widths (channels), image sizes, batch sizes and bit widths (8: the DPU default, where every
    layer's quantized sums are exact and bias correction computes one quantized product per
    layer; 16: sums too long for exactness, two products per corrected layer); the worst point
    is printed last."""
    rows = []
    print(f"bias correction grid, {images} calibration images, best of {repeats}")
    print(f"{'bits':>4} {'width':>5} {'size':>4} {'batch':>5} {'calib ms':>9} {'export ms':>9} {'ratio':>6}")
    for bits in (8, 16):
        for width in (16, 24, 48):
            for size in (16, 32):
                for batch in (1, 8, 64):
                    torch.manual_seed(width + size)
                    model = SmallResNet(width).eval()
                    data = torch.randn(images, 3, size, size)
                    t = time_bias_correction(model, data, batch, repeats, bits)
                    calib, export = t["calibration pass"], t["export_quant_config (bias correction)"]
                    rows.append((export / calib, bits, width, size, batch))
                    print(f"{bits:>4} {width:>5} {size:>4} {batch:>5} {calib * 1e3:9.1f} {export * 1e3:9.1f} "
                          f"{export / calib:6.2f}x", flush=True)
    for bits in (8, 16):
        worst = max(r for r in rows if r[1] == bits)
        print(f"worst at {bits} bits: {worst[0]:.2f}x (width {worst[2]}, {worst[3]}x{worst[3]}, batch {worst[4]})")


def time_fast_finetune(model: nn.Module, images: torch.Tensor, batch: int, repeats: int) -> dict[str, float]:
    """Best of `repeats` fast_finetune() runs (each on a fresh quantizer) and of the float
    forward over the same images."""
    float_time = best_of(lambda: _forward_all(model, images, batch), 3)
    ft_times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            q = torch_quantizer("calib", model, images[:batch], output_dir=out, device=torch.device("cpu"))
            start = time.perf_counter()
            q.fast_finetune(_forward_all, (q.quant_model, images, batch))
            ft_times.append(time.perf_counter() - start)
    return {"float forward": float_time, "fast_finetune": min(ft_times)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--calib-images", type=int, default=64)
    p.add_argument("--ft-images", type=int, default=256)
    p.add_argument("--ft-repeats", type=int, default=1)
    p.add_argument("--bc-grid", action="store_true",
                   help="only the bias-correction ratio, over a grid of widths, sizes, batches and bit widths")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("nndct").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.bc_grid:
        bias_correction_grid(args.calib_images, args.repeats)
        return
    torch.manual_seed(0)
    model = SmallResNet().eval()
    x = torch.randn(args.batch, 3, 32, 32)
    results: dict[str, float] = {}
    with torch.no_grad(), tempfile.TemporaryDirectory() as out:
        results["float forward"] = best_of(lambda: model(x), args.repeats)
        calib = torch_quantizer("calib", model, x, output_dir=out, device=torch.device("cpu"))
        results["calib quant_model"] = best_of(lambda: calib.quant_model(x), args.repeats)
        calib.export_quant_config()
        test = torch_quantizer("test", model, x, output_dir=out, device=torch.device("cpu"))
        results["test quant_model"] = best_of(lambda: test.quant_model(x), args.repeats)

        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (x,))
        results["torch.ao prepare_fx (observers)"] = best_of(lambda: prepared(x), args.repeats)
        converted = convert_fx(prepared)
        results["torch.ao convert_fx (int8 kernels)"] = best_of(lambda: converted(x), args.repeats)

    base = results["float forward"]
    print(f"SmallResNet, batch {args.batch} x 3x32x32, {args.threads} thread(s), best of {args.repeats}")
    for name, seconds in results.items():
        print(f"{name:36s} {seconds * 1e3:9.2f} ms  {seconds / base:6.2f}x float")
    print(f"calib vs torch.ao observers: {results['calib quant_model'] / results['torch.ao prepare_fx (observers)']:.2f}x")

    torch.manual_seed(1)
    calib_images = torch.randn(args.calib_images, 3, 32, 32)
    bc = time_bias_correction(model, calib_images, args.batch, args.repeats)
    print(f"\nbias correction, {args.calib_images} images (batches of {args.batch}), best of {args.repeats}")
    for name, seconds in bc.items():
        print(f"{name:40s} {seconds * 1e3:9.1f} ms")
    ratio = bc["export_quant_config (bias correction)"] / bc["calibration pass"]
    print(f"export_quant_config vs calibration pass: {ratio:.2f}x (target <= 2x)")

    ft_images = torch.randn(args.ft_images, 3, 32, 32)
    ft = time_fast_finetune(model, ft_images, args.batch, args.ft_repeats)
    per_image = {name: seconds / args.ft_images for name, seconds in ft.items()}
    print(f"\nfast finetune, {args.ft_images} images (batches of {args.batch}), best of {args.ft_repeats}")
    for name, seconds in per_image.items():
        print(f"{name:40s} {seconds * 1e3:9.3f} ms per image")
    print(f"fast_finetune vs float forward, per image: {per_image['fast_finetune'] / per_image['float forward']:.1f}x")


if __name__ == "__main__":
    main()
