"""Speed of the CNN flow's quantized model against the float model and torch.ao's FX quantization.

A small residual CNN (conv+BN+relu stem, two residual blocks with `+`, a depthwise conv, pooling,
linear) on a batch of 3x32x32 images. Everything is timed in the same run, best of several
repeats, and printed as ratios to the float forward:

- calib-mode `quant_model` (observers + fake quantization of every tensor) against torch.ao's
  `prepare_fx` model with its default x86 observers (what a user calibrates with otherwise);
- test-mode `quant_model` (fake quantization through the fix ops) against torch.ao's
  `convert_fx` int8 model (real quantized kernels, a different thing: it is the fastest int8 path
  torch offers on the CPU, shown for scale).

    python benchmarks/cnn.py [--repeats 5] [--batch 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import copy
import logging
import tempfile
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
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.block1, self.block2 = Block(32), Block(32)
        self.dw = nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.dw(self.block2(self.block1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("nndct").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
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


if __name__ == "__main__":
    main()
