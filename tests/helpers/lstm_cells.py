"""The per-cell float weights of an nn.LSTM and the fix positions a quant_info.json holds, in
the order of the step-by-step reference (tests/helpers/reference_lstm.py)."""
from __future__ import annotations

import json

import numpy as np
from torch import nn

from helpers import reference_lstm as ref


def cells_weights(lstm: nn.LSTM):
    """Per cell (layer-major, forward then backward) the float64 W_ih, W_hh, b_ih + b_hh."""
    out = []
    for layer in range(lstm.num_layers):
        for sfx in ("", "_reverse")[: 2 if lstm.bidirectional else 1]:
            w_ih = getattr(lstm, f"weight_ih_l{layer}{sfx}").detach().double().numpy()
            w_hh = getattr(lstm, f"weight_hh_l{layer}{sfx}").detach().double().numpy()
            b = np.zeros(w_hh.shape[0])
            if lstm.bias:
                b = (getattr(lstm, f"bias_ih_l{layer}{sfx}") + getattr(lstm, f"bias_hh_l{layer}{sfx}")).detach().double().numpy()
            out.append((w_ih, w_hh, b, bool(sfx)))
    return out


def quant_info_fixes(path, lstm_cells):
    qi = json.loads(path.read_text())
    fixes = []
    for name in lstm_cells:
        node = [qi["output"][f"{name}::{n}"][1] for n in ref.NODES]
        w_ih = [qi["param"][f"{name}::weight_i{g}"][1] for g in ref.GATES]
        w_hh = [qi["param"][f"{name}::weight_h{g}"][1] for g in ref.GATES]
        bias = [qi["param"][f"{name}::bias_{g}"][1] for g in ref.GATES]
        fixes.append((node, w_ih, w_hh, bias))
    return fixes
