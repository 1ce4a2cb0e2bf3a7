"""Models and data of the QAT tests: sklearn digits (8x8 images, 10 classes) and a small
residual CNN written as the guide asks (QuantStub/DeQuantStub, functional.Add, one module per
call), plus variants that break one requirement each."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from pytorch_nndct.nn import DeQuantStub, QuantStub
from pytorch_nndct.nn.modules import functional

TRAIN = 1400


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test); pixels scaled to k/16 in [0, 1]."""
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[:TRAIN]], y[perm[:TRAIN]], x[perm[TRAIN:]], y[perm[TRAIN:]]


class ResNetlet(nn.Module):
    """conv-BN-ReLU, a residual conv-BN (bias-free conv) joined by functional.Add, pool, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = QuantStub()
        self.dequant = DeQuantStub()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.skip_add = functional.Add()
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(x))
        x = self.relu2(self.skip_add(x, y))
        x = torch.flatten(self.pool(x), 1)
        return self.dequant(self.fc(x))


class PlusModel(ResNetlet):
    """Uses '+' for the skip connection (the guide asks for functional.Add)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(x + self.bn2(self.conv2(x)))
        return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))


class ReusedReLU(ResNetlet):
    """Calls relu1 twice."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu1(self.skip_add(x, self.bn2(self.conv2(x))))
        return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))


class NoStubs(nn.Module):
    """A plain MLP without QuantStub/DeQuantStub."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(x, 1))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
          epochs: int, seed: int = 0) -> nn.Module:
    """Mini-batch training (batch 64, cross entropy); returns the model in eval mode.

    One thread: the test machine's cores are shared, and it makes the run reproducible."""
    g = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(len(x), generator=g).split(64):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return float((model(x).argmax(1) == y).float().mean()) * 100.0


class StandaloneBN(nn.Module):
    """A BatchNorm after a ReLU (nothing to fold it into: captured as a `scale` op) and a
    Linear + BatchNorm1d pair (folded), with non-trivial running statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = QuantStub()
        self.dequant = DeQuantStub()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(64, 10, bias=False)
        self.bn_fc = nn.BatchNorm1d(10)
        g = torch.Generator().manual_seed(3)
        for bn in (self.bn, self.bn_fc):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            bn.bias.data.copy_(torch.randn(n, generator=g) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.relu(self.conv(self.quant(x))))
        x = F.adaptive_avg_pool2d(x, 4).flatten(1)
        return self.dequant(self.bn_fc(self.fc(x)))
