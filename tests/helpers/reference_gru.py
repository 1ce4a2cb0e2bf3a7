"""An independent, step-by-step NumPy model of the quantized StandardGruCell (both variants).

Written from the GRU rules of the LSTM flow (reference-rnn-quantizer-torch.md §1-3 applied to
the StandardGruCell graph of README.md's GRU section): float64 arithmetic on values that sit on
their power-of-two grids, one time step at a time, the way the reference unrolls a cell. It shares
no code with nndct_shared.gru or the C++ loops (only the table/rounding helpers of
reference_lstm.py and, for calibration, the diffs search of nndct_shared.kernels, which has its
own NumPy-reference tests), so agreement between the two is evidence, not tautology.

Node names are the graph's (gate letters i, f, g = reset r, update z, candidate n). `bw` is one
bit width for every tensor, or a mapping node / parameter name -> width (mixed widths).
"""
from __future__ import annotations

import numpy as np

from helpers.reference_lstm import ScanHistory, q_floor, q_std, sigmoid_lut, tanh_lut, width

GATES = "ifg"
TABLE = {"it", "ft", "cct"}


def nodes(reset_after: bool) -> list[str]:
    xb = "bias_i{g}" if reset_after else "bias_{g}"
    dense_x = [f"w_i{g} * input_0 + {xb.format(g=g)}" for g in GATES]
    if reset_after:
        dense_h = [f"w_h{g} * input_1 + bias_h{g}" for g in GATES]
        branch = [dense_h[2], "it*(w_hg * input_1 + bias_hg)"]
    else:
        dense_h = [f"w_h{g} * input_1" for g in GATES[:2]]
        branch = ["it*input_1", "w_hg * (it*input_1)"]
    return (["input_0", "input_1", dense_x[0], dense_h[0], "y_i", dense_x[1], dense_h[1], "y_f", "it", "ft",
             dense_x[2], *branch, "y_g", "cct", "ft*cct", "cct-ft*cct", "ft*input_1", "h_next"])


def params(reset_after: bool) -> list[str]:
    if reset_after:
        return [n for g in GATES for n in (f"weight_i{g}", f"bias_i{g}", f"weight_h{g}", f"bias_h{g}")]
    return [n for g in GATES for n in (f"weight_i{g}", f"bias_{g}", f"weight_h{g}")]


def split(w_ih, w_hh, b_ih, b_hh, reset_after):
    """PyTorch-layout weights (rows r, z, n) -> the named parameter blocks."""
    H = w_hh.shape[1]
    out = {}
    for k, g in enumerate(GATES):
        rows = slice(k * H, (k + 1) * H)
        out[f"weight_i{g}"], out[f"weight_h{g}"] = w_ih[rows], w_hh[rows]
        if reset_after:
            out[f"bias_i{g}"], out[f"bias_h{g}"] = b_ih[rows], b_hh[rows]
        else:
            out[f"bias_{g}"] = b_ih[rows]
    return out


def test_step(x, h, blocks, node_fp, param_fp, bw, reset_after):
    """One test-mode step; returns {node: value}. Dense nodes: Q(Q(input @ W^T) + b). Every node
    is floored and clamped at its own position and width."""
    fp = dict(zip(nodes(reset_after), node_fp))
    q = {n: q_std(blocks[n], param_fp[n], width(bw, n)) for n in params(reset_after)}

    def qf(v, name):
        return q_floor(v, fp[name], width(bw, name))

    def table(lut, v, name):
        t = lut(v)
        return t if fp[name] >= 15 else qf(t, name)

    out = {"input_0": qf(x, "input_0"), "input_1": qf(h, "input_1")}

    def dense(name, data, weight, bias=None):
        a = qf(out[data] @ q[weight].T, name)
        out[name] = qf(a + (q[bias] if bias else 0.0), name)

    names = nodes(reset_after)
    for g, y, act in (("i", "y_i", "it"), ("f", "y_f", "ft")):
        dx, dh = names[names.index(y) - 2], names[names.index(y) - 1]
        dense(dx, "input_0", f"weight_i{g}", f"bias_i{g}" if reset_after else f"bias_{g}")
        dense(dh, "input_1", f"weight_h{g}", f"bias_h{g}" if reset_after else None)
        out[y] = qf(out[dx] + out[dh], y)
        out[act] = table(sigmoid_lut, out[y], act)
    dx, b1, b2 = names[10], names[11], names[12]
    dense(dx, "input_0", "weight_ig", "bias_ig" if reset_after else "bias_g")
    if reset_after:
        dense(b1, "input_1", "weight_hg", "bias_hg")
        out[b2] = qf(out["it"] * out[b1], b2)
    else:
        out[b1] = qf(out["it"] * out["input_1"], b1)
        dense(b2, b1, "weight_hg")
    out["y_g"] = qf(out[dx] + out[b2], "y_g")
    out["cct"] = table(tanh_lut, out["y_g"], "cct")
    out["ft*cct"] = qf(out["ft"] * out["cct"], "ft*cct")
    out["cct-ft*cct"] = qf(out["cct"] - out["ft*cct"], "cct-ft*cct")
    out["ft*input_1"] = qf(out["ft"] * out["input_1"], "ft*input_1")
    out["h_next"] = qf(out["cct-ft*cct"] + out["ft*input_1"], "h_next")
    return out


def test_sequence(x, blocks, node_fp, param_fp, bw, reset_after, h0=None, reverse=False):
    """x [T, I] of one sequence -> list of per-step node dicts (processing order)."""
    H = blocks["weight_hi"].shape[0]
    h = np.zeros(H) if h0 is None else h0
    steps = []
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        out = test_step(x[t], h, blocks, node_fp, param_fp, bw, reset_after)
        steps.append(out)
        h = out["h_next"]
    return steps


class CalibReference(ScanHistory):
    """The calibration-mode cell, one call per step of the active rows (see ScanHistory)."""

    def __init__(self, blocks, bw, reset_after, diffs, max_fix_pos=12):
        super().__init__(nodes(reset_after), bw, diffs, max_fix_pos)
        self.reset_after = reset_after
        self.names = nodes(reset_after)
        self.param_fp = {n: diffs(blocks[n], width(bw, n), search_range=5, method="std_round",
                                  max_fix_pos=max_fix_pos) for n in params(reset_after)}
        self.q = {n: q_std(blocks[n], fp, width(bw, n)) for n, fp in self.param_fp.items()}

    def step(self, x, h):
        """x [N, I], h [N, H] of the rows active at this step -> h_next."""
        after, q, n = self.reset_after, self.q, self.names
        x = self.scan("input_0", x, 1)
        h = self.scan("input_1", h, 1)
        gate = {}
        for g, y, act in (("i", "y_i", "it"), ("f", "y_f", "ft")):
            dx, dh = n[n.index(y) - 2], n[n.index(y) - 1]
            a = self.scan(dx, x @ q[f"weight_i{g}"].T + q[f"bias_i{g}" if after else f"bias_{g}"])
            b = self.scan(dh, h @ q[f"weight_h{g}"].T + (q[f"bias_h{g}"] if after else 0.0))
            yv = self.scan(y, a + b)
            gate[act] = self.scan(act, sigmoid_lut(yv))
        a = self.scan(n[10], x @ q["weight_ig"].T + q["bias_ig" if after else "bias_g"])
        if after:
            b1 = self.scan(n[11], h @ q["weight_hg"].T + q["bias_hg"])
            b2 = self.scan(n[12], gate["it"] * b1)
        else:
            b1 = self.scan(n[11], gate["it"] * h)
            b2 = self.scan(n[12], b1 @ q["weight_hg"].T)
        yg = self.scan("y_g", a + b2)
        cct = self.scan("cct", tanh_lut(yg))
        zn = self.scan("ft*cct", gate["ft"] * cct)
        d = self.scan("cct-ft*cct", cct - zn)
        zh = self.scan("ft*input_1", gate["ft"] * h)
        return self.scan("h_next", d + zh)

    def run(self, x, lengths=None, reverse=False, h0=None):
        """x [B, T, I] -> out [B, T, H] (zeros past each length)."""
        B, T, _ = x.shape
        H = self.q["weight_hi"].shape[0]
        lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
        h = np.zeros((B, H)) if h0 is None else np.array(h0, dtype=np.float64)
        out = np.zeros((B, T, H))
        for t in range(T):
            rows = np.nonzero(lengths > t)[0]
            if rows.size == 0:
                continue
            pos = lengths[rows] - 1 - t if reverse else np.full(rows.size, t)
            hn = self.step(x[rows, pos], h[rows])
            h[rows] = hn
            out[rows, pos] = hn
        return out

    def aligned(self):
        """(node_fp [19], param_fp) after the export-time alignment: tables at min(15, width - 1), x
        at its own position, every other node at h_next's, each bias at its dense node's. Mixed
        widths: "at h_next's" is the position giving h_next's range at the node's own width (a
        wider node's extra bits become fraction bits, up to the cap)."""
        ph, px = self.fp_or_cap("h_next"), self.fp_or_cap("input_0")
        wh = width(self.bw, "h_next")

        def same_range(fp, w_from, w_to):
            return min(fp + w_to - w_from, max(self.cap, fp)) if w_to > w_from else fp + w_to - w_from

        node = [px if m == "input_0" else min(15, width(self.bw, m) - 1) if m in TABLE
                else same_range(ph, wh, width(self.bw, m)) for m in self.names]
        fp = dict(zip(self.names, node))
        param = dict(self.param_fp)
        for name in param:
            if name.startswith("bias"):  # bias_<g> / bias_i<g> / bias_h<g>: its dense node's range
                dense = next(m for m in self.names if m.endswith(" + " + name))
                param[name] = same_range(fp[dense], width(self.bw, dense), width(self.bw, name))
        return node, param
