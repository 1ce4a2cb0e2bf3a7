"""The step-by-step GRU reference (tests/helpers/reference_gru.py) run over a whole nn.GRU, layer
by layer: per-cell named weight blocks, the reference's calibration and test mode, and the fix
positions a quant_info.json holds, in the reference's order (the GRU twin of lstm_cells.py).

`bw` is one width for every cell, or a list with one entry per cell (layer-major, forward then
backward), each an int or a mapping tensor name -> width (mixed widths)."""
from __future__ import annotations

import json

import numpy as np
from torch import nn

from helpers import reference_gru as ref
from nndct_shared import kernels


def _per_cell(bw, k):
    return bw[k] if isinstance(bw, list) else bw


def cell_blocks(gru: nn.GRU):
    """Per cell (layer-major, forward then backward): (named float64 blocks, reverse)."""
    out = []
    for layer in range(gru.num_layers):
        for sfx in ("", "_reverse")[: 2 if gru.bidirectional else 1]:
            get = lambda n: getattr(gru, f"{n}_l{layer}{sfx}").detach().double().numpy()  # noqa: E731
            H = gru.hidden_size
            b_ih = get("bias_ih") if gru.bias else np.zeros(3 * H)
            b_hh = get("bias_hh") if gru.bias else np.zeros(3 * H)
            out.append((ref.split(get("weight_ih"), get("weight_hh"), b_ih, b_hh, True), bool(sfx)))
    return out


def reference_calibration(gru: nn.GRU, x: np.ndarray, bw):
    """The reference calibration layer by layer; the aligned (node, param) positions per cell."""
    cells = cell_blocks(gru)
    dirs = 2 if gru.bidirectional else 1
    layer_in, aligned = x, []
    for layer in range(gru.num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            blocks, reverse = cells[k]
            cal = ref.CalibReference(blocks, _per_cell(bw, k), True, kernels.diffs_fix_pos)
            outs.append(cal.run(layer_in, reverse=reverse))
            aligned.append(cal.aligned())
        layer_in = np.concatenate(outs, axis=2)
    return aligned


def reference_test(gru: nn.GRU, x: np.ndarray, fixes, bw, lengths=None, h0=None, steps_of=None):
    """Test-mode reference over sequences, layer by layer; returns (out [B, T, D*H], h_n).
    `steps_of`: a dict that receives cell k's per-step node values of batch element 0."""
    cells = cell_blocks(gru)
    dirs = 2 if gru.bidirectional else 1
    B, T, _ = x.shape
    lengths = [T] * B if lengths is None else list(lengths)
    layer_in, h_n = x, []
    for layer in range(gru.num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            (blocks, reverse), (node_fp, param_fp) = cells[k], fixes[k]
            o, last = np.zeros((B, T, gru.hidden_size)), np.zeros((B, gru.hidden_size))
            for n in range(B):
                L = lengths[n]
                steps = ref.test_sequence(layer_in[n, :L], blocks, node_fp, param_fp, _per_cell(bw, k), True,
                                          h0=None if h0 is None else h0[k, n], reverse=reverse)
                if steps_of is not None and n == 0:
                    steps_of[k] = steps
                for pos, s in zip(range(L - 1, -1, -1) if reverse else range(L), steps):
                    o[n, pos] = s["h_next"]
                last[n] = steps[-1]["h_next"]
            outs.append(o)
            h_n.append(last)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in, np.stack(h_n)


def quant_info_fixes(path, graphs):
    """(node positions, {param: position}) of each cell graph of a reset-after quant_info.json."""
    qi = json.loads(path.read_text())
    names, params = ref.nodes(True), ref.params(True)
    return [([qi["output"][f"{g}::{n}"][1] for n in names], {p: qi["param"][f"{g}::{p}"][1] for p in params})
            for g in graphs]
