"""The float PyTorch classifier of the LSTM example: one LSTM layer, last step, Linear.

Why this shape: it is the reference example's architecture (LSTM -> last time step ->
Linear) without the embedding, since JapaneseVowels frames are already real-valued
12-feature vectors. `torch_quantizer(..., lstm=True)` replaces only the `nn.LSTM` child;
the Linear head stays float, exactly as in the reference tool.
"""
from __future__ import annotations

import torch
from torch import nn

NUM_FEATURES = 12
NUM_CLASSES = 9
HIDDEN_SIZE = 32


class LstmClassifier(nn.Module):
    """x (batch, time, features) -> class logits (batch, classes)."""

    def __init__(self, input_size: int = NUM_FEATURES, hidden_size: int = HIDDEN_SIZE,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"expected input of shape (batch, time, features), got {tuple(x.shape)}")
        outputs, _ = self.lstm(x)
        return self.classifier(outputs[:, -1, :])
