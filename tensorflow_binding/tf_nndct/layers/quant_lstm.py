"""`QuantLSTM`: the Keras layer that replaces an `LSTM` or a `Bidirectional(LSTM)` in the
quantized model (the shared behaviour is `quant_rnn.QuantRNN`'s)."""
from __future__ import annotations

import keras
import numpy as np

from nndct_shared.lstm.cell_params import CellWeights

from .quant_rnn import MERGE_MODES, QuantRNN, RnnLayout, _numpy

__all__ = ["MERGE_MODES", "QuantLSTM", "RnnLayout", "keras_cell_weights"]


def keras_cell_weights(lstm: keras.layers.LSTM) -> CellWeights:
    """Keras kernel [in, 4H] / recurrent_kernel [H, 4H] / bias [4H] (gates i, f, c, o) as the
    cell's W_ih [4H, in], W_hh [4H, H] and single bias: the gate order is PyTorch's."""
    cell = lstm.cell
    kernel = np.asarray(_numpy(cell.kernel), dtype=np.float32)
    recurrent = np.asarray(_numpy(cell.recurrent_kernel), dtype=np.float32)
    bias = None
    if cell.use_bias:
        bias = np.asarray(_numpy(cell.bias), dtype=np.float32)
    return CellWeights.from_arrays(kernel.T.copy(), recurrent.T.copy(), bias)


class QuantLSTM(QuantRNN):
    """The quantized twin of one Keras `LSTM` / `Bidirectional(LSTM)` layer (a QuantizedLstmStack)."""

    kind = "LSTM"
    states_per_direction = 2

    def _forward(self, x, states):
        # Keras orders [h_fw, c_fw(, h_bw, c_bw)], each [B, H]; the stack wants [D, B, H].
        h0 = np.stack(states[0::2]) if states else None
        c0 = np.stack(states[1::2]) if states else None
        return self.stack.forward(x, None, h0, c0, self.mode, out_dtype=np.float32)

    def _capture(self, x, states):
        h0 = np.stack(states[0::2])[:, :1].copy() if states else None
        c0 = np.stack(states[1::2])[:, :1].copy() if states else None
        return (x[:1].copy(), None, h0, c0)
