"""`QuantLSTM`: the drop-in replacement of an `nn.LSTM` in the quantized model.

It accepts everything `nn.LSTM.forward` accepts (batch_first either way, unbatched input, packed
sequences, initial states) and returns the same structures, but computes through the neutral
`QuantizedLstmStack`, i.e. the C++ fixed-point cell shared with the Keras front end.
"""
from __future__ import annotations

from torch import nn

from nndct_shared.lstm.cell_params import CellWeights
from nndct_shared.lstm.stack import QuantizedLstmStack

from .quant_rnn import QuantRnnBase, kernel_out_dtype


def cell_weights_of(lstm: nn.LSTM) -> list[list[CellWeights]]:
    """Per layer and direction: W_ih, W_hh and the reference's bias b_ih + b_hh (float32 sum)."""
    layers = []
    for layer in range(lstm.num_layers):
        per_dir = []
        for suffix in ("", "_reverse")[: 2 if lstm.bidirectional else 1]:
            w_ih = getattr(lstm, f"weight_ih_l{layer}{suffix}").detach().cpu()
            w_hh = getattr(lstm, f"weight_hh_l{layer}{suffix}").detach().cpu()
            bias = None
            if lstm.bias:
                bias = (getattr(lstm, f"bias_ih_l{layer}{suffix}") + getattr(lstm, f"bias_hh_l{layer}{suffix}"))
                bias = bias.detach().cpu().numpy()
            per_dir.append(CellWeights.from_arrays(w_ih.numpy(), w_hh.numpy(), bias))
        layers.append(per_dir)
    return layers


class QuantLSTM(QuantRnnBase):
    """Quantized replacement of one `nn.LSTM` (all its layers and directions)."""

    kind = "LSTM"

    def __init__(self, lstm: nn.LSTM, prefix: str, module_path: str, bit_width: int) -> None:
        super().__init__(lstm, module_path)
        self.stack = QuantizedLstmStack(prefix, cell_weights_of(lstm), bit_width)

    def forward(self, input, hx=None):
        x, lengths, kind, device, dtype = self._numpy_input(input)
        h0 = c0 = None
        if hx is not None:
            h0, c0 = (self._numpy_state(which, s, kind) for which, s in zip(("h0", "c0"), hx))
        self._remember(x, lengths, h0, c0)
        with self._calibration_scope():
            out, h_n, c_n = self.stack.forward(x, lengths, h0, c0, self.mode, out_dtype=kernel_out_dtype(dtype))
        out_t, (h_t, c_t) = self._restore(out, [h_n, c_n], lengths, kind, device, dtype)
        return out_t, (h_t, c_t)
