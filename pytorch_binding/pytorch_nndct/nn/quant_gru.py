"""`QuantGRU`: the drop-in replacement of an `nn.GRU` in the quantized model.

It accepts everything `nn.GRU.forward` accepts (batch_first either way, unbatched input, packed
sequences, an initial state h0) and returns the same structures, but computes through the neutral
`QuantizedGruStack` (reset-after StandardGruCells), i.e. the C++ fixed-point cell shared with the
Keras front end.
"""
from __future__ import annotations

from torch import nn

from nndct_shared.gru.cell_params import GruCellWeights
from nndct_shared.gru.stack import QuantizedGruStack

from .quant_rnn import QuantRnnBase, kernel_out_dtype


def gru_cell_weights_of(gru: nn.GRU) -> list[list[GruCellWeights]]:
    """Per layer and direction: W_ih, W_hh, b_ih and b_hh (kept apart: b_hn sits inside the
    reset product); bias=False gives all-zero biases."""
    layers = []
    for layer in range(gru.num_layers):
        per_dir = []
        for suffix in ("", "_reverse")[: 2 if gru.bidirectional else 1]:
            arrays = {name: getattr(gru, f"{name}_l{layer}{suffix}").detach().cpu().numpy()
                      for name in ("weight_ih", "weight_hh", *(("bias_ih", "bias_hh") if gru.bias else ()))}
            per_dir.append(GruCellWeights.from_arrays(arrays["weight_ih"], arrays["weight_hh"],
                                                      arrays.get("bias_ih"), arrays.get("bias_hh")))
        layers.append(per_dir)
    return layers


class QuantGRU(QuantRnnBase):
    """Quantized replacement of one `nn.GRU` (all its layers and directions)."""

    kind = "GRU"

    def __init__(self, gru: nn.GRU, prefix: str, module_path: str, bit_width: int) -> None:
        super().__init__(gru, module_path)
        self.stack = QuantizedGruStack(prefix, gru_cell_weights_of(gru), bit_width)

    def forward(self, input, hx=None):
        x, lengths, kind, device, dtype = self._numpy_input(input)
        h0 = None if hx is None else self._numpy_state("h0", hx, kind)
        self._remember(x, lengths, h0)
        with self._calibration_scope():
            out, h_n = self.stack.forward(x, lengths, h0, self.mode, out_dtype=kernel_out_dtype(dtype))
        out_t, (h_t,) = self._restore(out, [h_n], lengths, kind, device, dtype)
        return out_t, h_t
