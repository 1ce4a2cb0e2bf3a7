"""The float PyTorch classifier of the GRU example: one GRU layer, last step, Linear.

The LSTM example's architecture with an `nn.GRU(12, 32, batch_first=True)` in place of the LSTM.
`torch_quantizer(..., lstm=True)` replaces only the `nn.GRU` child (a StandardGruCell graph);
the Linear head stays float, as the reference tool leaves everything but the RNN float. (The file
is not called model.py so that it can be imported next to the LSTM example's model.py.)
"""
from __future__ import annotations

import torch
from torch import nn

NUM_FEATURES = 12
NUM_CLASSES = 9
HIDDEN_SIZE = 32


class GruClassifier(nn.Module):
    """x (batch, time, features) -> class logits (batch, classes)."""

    def __init__(self, input_size: int = NUM_FEATURES, hidden_size: int = HIDDEN_SIZE,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"expected input of shape (batch, time, features), got {tuple(x.shape)}")
        outputs, _ = self.gru(x)
        return self.classifier(outputs[:, -1, :])
