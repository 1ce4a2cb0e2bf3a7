"""A small CNN for sklearn's 8x8 digits: conv+BN+relu, depthwise conv, pooling, linear."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.dw(x)))
        return self.fc(x.view(x.size(0), -1))


def digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The train (first 1400 after a fixed shuffle) or test split, images in [0, 1], NCHW."""
    from digits_data import digits_arrays

    x, y = digits_arrays(split)
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)
