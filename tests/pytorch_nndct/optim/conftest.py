"""Models for the fast-finetune / CLE / bias-correction tests, trained once per session on digits."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parents[1] / "cnn"))

import models  # noqa: E402  (tests/pytorch_nndct/cnn/models.py: digits data, train, accuracy)


class DepthwiseSeparable(nn.Module):
    """conv+BN+relu, depthwise conv+BN+relu, pointwise conv+BN+relu, max pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.dw, self.b2 = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16)
        self.pw, self.b3 = nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b1(self.c1(x)))
        x = F.relu(self.b2(self.dw(x)))
        x = self.pool(F.relu(self.b3(self.pw(x))))
        return self.fc(torch.flatten(x, 1))


class PlainDepthwise(nn.Module):
    """Depthwise-separable without BatchNorm, so channel scales can be planted directly."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw = nn.Conv2d(16, 32, 1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.dw(F.relu(self.c1(x))))
        x = self.pool(F.relu(self.pw(x)))
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="session")
def digits():
    return models.digits_split()


@pytest.fixture(scope="session")
def ds_model(digits):
    torch.manual_seed(0)
    return models.train(DepthwiseSeparable(), digits[0], digits[1], epochs=15, seed=0)


@pytest.fixture(scope="session")
def plain_model(digits):
    torch.manual_seed(0)
    return models.train(PlainDepthwise(), digits[0], digits[1], epochs=15, seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    """The test machine's cores are shared; one thread is fastest and deterministic here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
