"""The float parameters of one GRU cell (one layer, one direction), split the reference's way."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .naming import GATES


@dataclass(frozen=True)
class GruCellWeights:
    """Float weights of a cell in the PyTorch layout: gate-major rows in order r, z, n.

    reset_after=True (PyTorch, Keras reset_after=True): `b_ih` and `b_hh` are both kept, since
    b_hn sits inside r * (W_hn h + b_hn); a cell without bias has all-zero biases, so that every
    such cell has the same graph and quant_info.json keys. reset_after=False (Keras
    reset_after=False): one bias per gate, `b_ih`; `b_hh` is None.
    """

    w_ih: np.ndarray  # [3H, I]
    w_hh: np.ndarray  # [3H, H]
    b_ih: np.ndarray  # [3H]
    b_hh: np.ndarray | None  # [3H] (reset_after) or None
    reset_after: bool = True

    def __post_init__(self) -> None:
        three_h = self.w_hh.shape[0] if self.w_hh.ndim == 2 else -1
        if three_h < 0 or three_h % 3 or self.w_hh.shape[1] * 3 != three_h:
            raise ValueError(f"w_hh must have shape [3*H, H], got {self.w_hh.shape}")
        if self.w_ih.ndim != 2 or self.w_ih.shape[0] != three_h:
            raise ValueError(f"w_ih must have shape [{three_h}, input_size], got {self.w_ih.shape}")
        if self.b_ih.shape != (three_h,):
            raise ValueError(f"b_ih must have shape [{three_h}], got {self.b_ih.shape}")
        if self.reset_after and (self.b_hh is None or self.b_hh.shape != (three_h,)):
            raise ValueError(f"a reset-after GRU cell needs b_hh of shape [{three_h}]")
        if not self.reset_after and self.b_hh is not None:
            raise ValueError("a reset-before GRU cell has one bias per gate (b_ih) and no b_hh")

    @classmethod
    def from_arrays(cls, w_ih, w_hh, b_ih=None, b_hh=None, reset_after: bool = True) -> "GruCellWeights":
        """float64 copies; a missing b_ih (and, reset-after, b_hh) is all zeros."""
        w_hh = np.ascontiguousarray(w_hh, dtype=np.float64)
        zeros = np.zeros(w_hh.shape[0])

        def bias(b):
            return zeros.copy() if b is None else np.ascontiguousarray(b, dtype=np.float64)

        return cls(np.ascontiguousarray(w_ih, dtype=np.float64), w_hh, bias(b_ih),
                   bias(b_hh) if reset_after else None, reset_after)

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]

    def blocks(self) -> dict[str, np.ndarray]:
        """The named parameter tensors of the cell graph (`weight_ii`, `bias_ii`, ...)."""
        H = self.hidden_size
        out: dict[str, np.ndarray] = {}
        for k, g in enumerate(GATES):
            rows = slice(k * H, (k + 1) * H)
            out[f"weight_i{g}"] = self.w_ih[rows]
            out[f"weight_h{g}"] = self.w_hh[rows]
            if self.reset_after:
                out[f"bias_i{g}"] = self.b_ih[rows]
                out[f"bias_h{g}"] = self.b_hh[rows]
            else:
                out[f"bias_{g}"] = self.b_ih[rows]
        return out
