"""`QuantGRU`: the Keras layer that replaces a `GRU` or a `Bidirectional(GRU)` in the quantized
model (the shared behaviour is `quant_rnn.QuantRNN`'s).

Keras orders a GRU's gates z, r, h along the 3H axis; the StandardGruCell (like PyTorch) orders
them r, z, n, so the weights are regrouped, never changed. reset_after=True keeps Keras' input and
recurrent biases (bias[0], bias[1]) and maps onto the same reset-after cell as nn.GRU;
reset_after=False has one bias per gate and its own reset-before cell.
"""
from __future__ import annotations

import keras
import numpy as np

from nndct_shared.gru.cell_params import GruCellWeights

from .quant_rnn import QuantRNN, _numpy

__all__ = ["QuantGRU", "keras_gru_cell_weights"]


def _torch_gate_order(a: np.ndarray, units: int) -> np.ndarray:
    """Keras [..., z | r | h] along the last axis -> PyTorch rows order r, z, n (as [.., 3H])."""
    z, r, h = a[..., :units], a[..., units:2 * units], a[..., 2 * units:]
    return np.concatenate([r, z, h], axis=-1)


def keras_gru_cell_weights(gru: keras.layers.GRU) -> GruCellWeights:
    """Keras kernel [in, 3H] / recurrent_kernel [H, 3H] / bias ([2, 3H] or [3H]) as the cell's
    W_ih [3H, in], W_hh [3H, H], b_ih and b_hh in PyTorch gate order."""
    cell = gru.cell
    units = cell.units
    kernel = _torch_gate_order(np.asarray(_numpy(cell.kernel), dtype=np.float32), units)
    recurrent = _torch_gate_order(np.asarray(_numpy(cell.recurrent_kernel), dtype=np.float32), units)
    b_ih = b_hh = None
    if cell.use_bias:
        bias = _torch_gate_order(np.asarray(_numpy(cell.bias), dtype=np.float32), units)
        b_ih, b_hh = (bias[0], bias[1]) if cell.reset_after else (bias, None)
    return GruCellWeights.from_arrays(kernel.T.copy(), recurrent.T.copy(), b_ih, b_hh, reset_after=cell.reset_after)


class QuantGRU(QuantRNN):
    """The quantized twin of one Keras `GRU` / `Bidirectional(GRU)` layer (a QuantizedGruStack)."""

    kind = "GRU"
    states_per_direction = 1
    unsupported_code = "UNSUPPORTED_GRU"

    def _forward(self, x, states):
        # Keras orders [h_fw(, h_bw)], each [B, H]; the stack wants [D, B, H].
        return self.stack.forward(x, None, np.stack(states) if states else None, self.mode, out_dtype=np.float32)

    def _capture(self, x, states):
        return (x[:1].copy(), None, np.stack(states)[:, :1].copy() if states else None, None)
