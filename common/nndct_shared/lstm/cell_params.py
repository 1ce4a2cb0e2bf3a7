"""The float parameters of one LSTM cell (one layer, one direction), split the reference's way."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .naming import GATES


@dataclass(frozen=True)
class CellWeights:
    """Float weights of a cell in the PyTorch layout, gate-major rows in order i, f, g, o.

    `bias` is the reference's single bias, b_ih + b_hh (summed by the front end in the model's own
    dtype, as the reference's parser does); a cell without bias has an all-zero bias, so that every
    cell has the same 24-node graph and the same quant_info.json keys.
    """

    w_ih: np.ndarray  # [4H, I]
    w_hh: np.ndarray  # [4H, H]
    bias: np.ndarray  # [4H]

    def __post_init__(self) -> None:
        four_h = self.w_hh.shape[0]
        if self.w_hh.ndim != 2 or four_h % 4 or self.w_hh.shape[1] * 4 != four_h:
            raise ValueError(f"w_hh must have shape [4*H, H], got {self.w_hh.shape}")
        if self.w_ih.ndim != 2 or self.w_ih.shape[0] != four_h:
            raise ValueError(f"w_ih must have shape [{four_h}, input_size], got {self.w_ih.shape}")
        if self.bias.shape != (four_h,):
            raise ValueError(f"bias must have shape [{four_h}], got {self.bias.shape}")

    @classmethod
    def from_arrays(cls, w_ih, w_hh, bias=None) -> "CellWeights":
        w_hh = np.ascontiguousarray(w_hh, dtype=np.float64)
        b = np.zeros(w_hh.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
        return cls(np.ascontiguousarray(w_ih, dtype=np.float64), w_hh, np.ascontiguousarray(b))

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]

    def blocks(self) -> dict[str, np.ndarray]:
        """The 12 named parameter tensors of the cell graph (`weight_ii`, `bias_i`, ...)."""
        H = self.hidden_size
        out: dict[str, np.ndarray] = {}
        for k, g in enumerate(GATES):
            rows = slice(k * H, (k + 1) * H)
            out[f"weight_i{g}"] = self.w_ih[rows]
            out[f"bias_{g}"] = self.bias[rows]
            out[f"weight_h{g}"] = self.w_hh[rows]
        return out
