"""Accuracy of cross-layer equalization: none, the reference's (the default) and with this
project's extensions (config key `cle_extensions`: linear pairs, LeakyReLU and adaptive max
pooling between the layers, sweeps until the scales converge).

Four small models are trained here on sklearn's digits (8x8 images, 1400 train / 397 test; a
few seconds each): an MLP, a LeNet, a depthwise-separable CNN and a CNN with LeakyReLU. Each is
calibrated on 300 training images and evaluated in test mode on the test images, at 8 and 4 bits
(weights and activations), with bias correction off so that only CLE differs. The numbers are
deterministic for a given torch build (seeded training, one thread).

    python benchmarks/cle_accuracy.py [--bits 8 4] [--epochs 15]
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.config import default_config
from pytorch_nndct.apis import torch_quantizer


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(64, 64), nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 16, 3, padding=1)
        self.fc1, self.fc2, self.fc3 = nn.Linear(64, 32), nn.Linear(32, 16), nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.flatten(F.max_pool2d(F.relu(self.conv2(x)), 2), 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class DepthwiseSeparable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.dw, self.b2 = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16)
        self.pw, self.b3 = nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b1(self.c1(x)))
        x = F.relu(self.b2(self.dw(x)))
        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.b3(self.pw(x))), 2), 1))


class LeakyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.act = nn.LeakyReLU(0.1015625)
        self.fc1, self.fc2 = nn.Linear(16 * 16, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.act(self.c2(self.act(self.c1(x)))), 2)
        return self.fc2(self.act(self.fc1(torch.flatten(x, 1))))


MODELS = {"MLP": MLP, "LeNet": LeNet, "DepthwiseSeparable": DepthwiseSeparable, "LeakyCNN": LeakyCNN}
VARIANTS = {"no CLE": dict(include_cle=False), "reference CLE": dict(include_cle=True),
            "CLE + extensions": dict(include_cle=True, cle_extensions=True)}


def digits() -> tuple[torch.Tensor, ...]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    x, y = x[perm], y[perm]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(epochs):
        for i in range(0, len(y), 350):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 350]), y[i:i + 350]).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def quantized_accuracy(model: nn.Module, data: tuple, bits: int, variant: dict, out: Path) -> float:
    x_train, _, x_test, y_test = data
    config = default_config(bits, "DPU" if bits == 8 else "CPU").to_dict()
    config.update(variant, include_bias_corr=False)
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    kw = dict(output_dir=str(out), device=torch.device("cpu"), quant_config_file=str(out / "config.json"),
              bitwidth=bits)
    calib = torch_quantizer("calib", model, x_train[:100], **kw)
    with torch.no_grad():
        for i in range(0, 300, 100):
            calib.quant_model(x_train[i:i + 100])
    calib.export_quant_config()
    return accuracy(torch_quantizer("test", model, x_train[:100], **kw).quant_model, x_test, y_test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4])
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("nndct").setLevel(logging.ERROR)
    data = digits()
    print(f"{'model':<20}{'bits':>5}{'float':>8}" + "".join(f"{v:>18}" for v in VARIANTS))
    with tempfile.TemporaryDirectory() as tmp:
        for name, cls in MODELS.items():
            model = train(cls(), data[0], data[1], args.epochs)
            float_acc = accuracy(model, data[2], data[3])
            for bits in args.bits:
                accs = [quantized_accuracy(model, data, bits, variant, Path(tmp) / f"{name}_{bits}_{i}")
                        for i, variant in enumerate(VARIANTS.values())]
                print(f"{name:<20}{bits:>5}{float_acc:>8.2f}" + "".join(f"{a:>18.2f}" for a in accs))


if __name__ == "__main__":
    main()
