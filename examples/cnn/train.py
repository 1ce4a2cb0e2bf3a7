"""Trains DigitsNet and writes checkpoints/digits_net.pth (a few seconds on a CPU)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from digits_net import DigitsNet, digits


def main() -> None:
    torch.manual_seed(0)
    x, y = digits("train")
    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(20):
        for i in range(0, len(y), 350):
            opt.zero_grad()
            F.cross_entropy(model(x[i:i + 350]), y[i:i + 350]).backward()
            opt.step()
    out = Path(__file__).parent / "checkpoints" / "digits_net.pth"
    out.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
