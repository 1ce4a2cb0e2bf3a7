"""Small real models for the CNN-flow tests, trained on sklearn's digits (8x8 images)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test): images scaled to [0, 1], shape (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    x, y = x[perm], y[perm]
    return x[:1400], y[:1400], x[1400:], y[1400:]


class DigitsCNN(nn.Module):
    """Conv+BN+ReLU, depthwise conv, max pool, 1x1 conv, leaky relu, adaptive avg pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.act = nn.LeakyReLU(0.1015625)  # the DPU slope, as the guide recommends
        self.gap = nn.AdaptiveAvgPool2d((2, 2))
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.dw(x)))
        x = self.gap(self.act(self.bn2(self.pw(x))))
        return self.fc(torch.flatten(x, 1))


class DigitsMLP(nn.Module):
    """Three linear layers with relu (the toy FFN's structure) on flattened digits."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(64, 32)
        self.l2 = nn.Linear(32, 16)
        self.l3 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.size(0), -1)
        return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))


class ResidualNet(nn.Module):
    """A residual block with `+` in forward, then avg pool and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.c1 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        y = self.c2(F.relu(self.b1(self.c1(x))))
        x = F.relu(x + y)
        return self.fc(self.pool(x).reshape(x.shape[0], -1))


class Conv1dNet(nn.Module):
    """A 1-D CNN on the digit rows read as 8 channels of length 8."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(8, 16, 3, padding=1)
        self.bn = nn.BatchNorm1d(16)
        self.pool = nn.MaxPool1d(2)
        self.c2 = nn.Conv1d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.size(0), 8, 8)
        x = self.pool(torch.relu(self.bn(self.c1(x))))
        x = torch.tanh(self.c2(x)).mean(dim=2)
        return self.fc(x)


class LeNet(nn.Module):
    """The spec's LeNet (reference-cnn-flow-3x.md) sized for 8x8 digits:
    conv1-relu-pool-conv2-relu-pool-flatten-fc1-relu-fc2-relu-fc3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class PlainMLP(DigitsMLP):
    """DigitsMLP on already flattened digits ([N, 64] in): linear-relu-linear-relu-linear."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(F.relu(self.l2(F.relu(self.l1(x)))))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 15, seed: int = 0) -> nn.Module:
    """Full-batch-ish Adam training (a second or two on a CPU core); returns the model in eval mode."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared; one thread is fastest here
    try:
        model.train()
        for _ in range(epochs):
            for i in range(0, len(y), 350):
                opt.zero_grad()
                loss = F.cross_entropy(model(x[i:i + 350]), y[i:i + 350])
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 200) -> float:
    with torch.no_grad():
        hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(y), batch))
    return 100.0 * hits / len(y)
