"""An independent, step-by-step NumPy model of the reference RNN quantizer's LSTM cell.

Written from the spec (reference-rnn-quantizer-torch.md §1-3) in float64 arithmetic, one time
step at a time, the way the reference unrolls it: it shares no code with nndct_shared.lstm (only
the diffs search of nndct_shared.kernels, which has its own NumPy-reference tests), so agreement
between the two is evidence, not tautology.
"""
from __future__ import annotations

import numpy as np

GATES = "ifgo"
NODES = (["input_0", "input_1", "input_2"]
         + [n for g in GATES for n in (f"w_i{g} * input_0 + bias_{g}", f"w_h{g} * input_1", f"y_{g}")]
         + ["it", "ft", "cct", "ot", "it*cct", "ft*input_2", "c_next", "c_temp", "h_next"])
TABLE = {"it", "ft", "cct", "ot", "c_temp"}

SIGMOID_TABLE = np.round(32768.0 / (1.0 + np.exp(-(np.arange(2048) - 1024) / 128.0)))
TANH_TABLE = np.round(32768.0 * np.tanh((np.arange(2048) - 1024) / 256.0))


def width(bw, name):
    """The width of node or parameter `name`: `bw` is one width for every tensor, or a mapping
    name -> width (mixed widths)."""
    return bw if isinstance(bw, int) else bw[name]


def q_floor(v, fp, bw):
    r = np.floor(np.asarray(v, np.float64) * 2.0 ** fp)
    return np.clip(r, -2 ** (bw - 1), 2 ** (bw - 1) - 1) / 2.0 ** fp


def q_std(v, fp, bw):
    r = np.asarray(v, np.float64) * 2.0 ** fp
    r = np.where(r >= 0, np.floor(r + 0.5), np.ceil(r - 0.5))
    return np.clip(r, -2 ** (bw - 1), 2 ** (bw - 1) - 1) / 2.0 ** fp


def sigmoid_lut(v):
    idx = np.clip(np.floor(v * 128).astype(np.int64) + 1024, 0, 2047)
    return np.where(v >= 8, 32767, np.where(v < -8, 0, SIGMOID_TABLE[idx])) / 32768.0


def tanh_lut(v):
    idx = np.clip(np.floor(v * 256).astype(np.int64) + 1024, 0, 2047)
    return np.where(v >= 4, 32767, np.where(v < -4, -32768, TANH_TABLE[idx])) / 32768.0


def split(w_ih, w_hh, bias):
    H = w_hh.shape[1]
    return {g: (w_ih[k * H:(k + 1) * H], w_hh[k * H:(k + 1) * H], bias[k * H:(k + 1) * H]) for k, g in enumerate(GATES)}


def test_step(x, h, c, w_ih, w_hh, bias, node_fp, w_ih_fp, w_hh_fp, bias_fp, bw):
    """One test-mode step; returns {node: value}. Table outputs stay on the 2^-15 grid unless
    the node's position is coarser (then floored to it)."""
    fp = dict(zip(NODES, node_fp))
    blocks = split(w_ih, w_hh, bias)

    def qf(v, name):
        return q_floor(v, fp[name], width(bw, name))

    out = {"input_0": qf(x, "input_0"), "input_1": qf(h, "input_1"), "input_2": qf(c, "input_2")}
    gates = {}
    for k, g in enumerate(GATES):
        wi, wh, b = blocks[g]
        wi = q_std(wi, w_ih_fp[k], width(bw, f"weight_i{g}"))
        wh = q_std(wh, w_hh_fp[k], width(bw, f"weight_h{g}"))
        b = q_std(b, bias_fp[k], width(bw, f"bias_{g}"))
        a_name, b_name = f"w_i{g} * input_0 + bias_{g}", f"w_h{g} * input_1"
        a = qf(qf(out["input_0"] @ wi.T, a_name) + b, a_name)
        r = qf(qf(out["input_1"] @ wh.T, b_name), b_name)
        y = qf(a + r, f"y_{g}")
        out[a_name], out[b_name], out[f"y_{g}"] = a, r, y
        gates[g] = tanh_lut(y) if g == "g" else sigmoid_lut(y)
    for name, g in zip(("it", "ft", "cct", "ot"), GATES):
        out[name] = gates[g] if fp[name] >= 15 else qf(gates[g], name)
    out["it*cct"] = qf(out["it"] * out["cct"], "it*cct")
    out["ft*input_2"] = qf(out["ft"] * out["input_2"], "ft*input_2")
    out["c_next"] = qf(out["it*cct"] + out["ft*input_2"], "c_next")
    ct = tanh_lut(out["c_next"])
    out["c_temp"] = ct if fp["c_temp"] >= 15 else qf(ct, "c_temp")
    out["h_next"] = qf(out["ot"] * out["c_temp"], "h_next")
    return out


def test_sequence(x, w_ih, w_hh, bias, fix, bw, h0=None, c0=None, reverse=False):
    """x [T, I] of one sequence -> list of per-step node dicts (processing order)."""
    H = w_hh.shape[1]
    h = np.zeros(H) if h0 is None else h0
    c = np.zeros(H) if c0 is None else c0
    steps = []
    for t in (range(len(x) - 1, -1, -1) if reverse else range(len(x))):
        out = test_step(x[t], h, c, w_ih, w_hh, bias, *fix, bw)
        steps.append(out)
        h, c = out["h_next"], out["c_next"]
    return steps


class ScanHistory:
    """The calibration statistic of a cell's nodes: per call (= one step of one batch) every
    node's output is scanned with diffs, its fix position appended to the node's history and the
    output floored at the history's mode. All-zero outputs do not vote (this project's defined
    behaviour)."""

    def __init__(self, nodes, bw, diffs, max_fix_pos=12):
        self.bw, self.diffs, self.cap = bw, diffs, max_fix_pos
        self.hist = {n: {} for n in nodes}

    def mode(self, name):
        h = self.hist[name]
        if not h:
            return None
        best = max(h.values())
        return min(fp for fp, n in h.items() if n == best)

    def scan(self, name, v, search_range=5):
        if np.any(v != 0):
            fp = self.diffs(np.ascontiguousarray(v), width(self.bw, name), search_range=search_range,
                            method="floor", max_fix_pos=self.cap)
            self.hist[name][fp] = self.hist[name].get(fp, 0) + 1
        fp = self.mode(name)
        return v if fp is None else q_floor(v, fp, width(self.bw, name))

    def fp_or_cap(self, name):
        fp = self.mode(name)
        return self.cap if fp is None else fp


class CalibReference(ScanHistory):
    """The calibration-mode LSTM cell (see ScanHistory for the per-node statistic)."""

    def __init__(self, w_ih, w_hh, bias, bw, diffs, max_fix_pos=12):
        super().__init__(NODES, bw, diffs, max_fix_pos)
        blocks = split(w_ih, w_hh, bias)
        self.param_fp = {}
        self.q = {}
        for g in GATES:
            for name, arr in zip((f"weight_i{g}", f"weight_h{g}", f"bias_{g}"), blocks[g]):
                fp = diffs(arr, width(bw, name), search_range=5, method="std_round", max_fix_pos=max_fix_pos)
                self.param_fp[name] = fp
                self.q[name] = q_std(arr, fp, width(bw, name))

    def step(self, x, h, c):
        """x [N, I], h/c [N, H] of the rows active at this step -> (h_next, c_next)."""
        x = self.scan("input_0", x, 1)
        h = self.scan("input_1", h, 1)
        c = self.scan("input_2", c, 1)
        g_out = {}
        for g in GATES:
            a = self.scan(f"w_i{g} * input_0 + bias_{g}", x @ self.q[f"weight_i{g}"].T + self.q[f"bias_{g}"])
            r = self.scan(f"w_h{g} * input_1", h @ self.q[f"weight_h{g}"].T)
            g_out[g] = self.scan(f"y_{g}", a + r)
        it = self.scan("it", sigmoid_lut(g_out["i"]))
        ft = self.scan("ft", sigmoid_lut(g_out["f"]))
        cct = self.scan("cct", tanh_lut(g_out["g"]))
        ot = self.scan("ot", sigmoid_lut(g_out["o"]))
        ig = self.scan("it*cct", it * cct)
        fc = self.scan("ft*input_2", ft * c)
        cn = self.scan("c_next", ig + fc)
        ct = self.scan("c_temp", tanh_lut(cn))
        hn = self.scan("h_next", ot * ct)
        return hn, cn

    def run(self, x, lengths=None, reverse=False):
        """x [B, T, I] -> out [B, T, H] (zeros past each length)."""
        B, T, _ = x.shape
        H = self.q["weight_hi"].shape[0]
        lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
        h = np.zeros((B, H))
        c = np.zeros((B, H))
        out = np.zeros((B, T, H))
        for t in range(T):
            rows = np.nonzero(lengths > t)[0]
            if rows.size == 0:
                continue
            pos = lengths[rows] - 1 - t if reverse else np.full(rows.size, t)
            hn, cn = self.step(x[rows, pos], h[rows], c[rows])
            h[rows], c[rows] = hn, cn
            out[rows, pos] = hn
        return out

    def aligned(self):
        """(node_fp[24], w_ih_fp[4], w_hh_fp[4], bias_fp[4]) after the export-time alignment."""
        ph, px = self.fp_or_cap("h_next"), self.fp_or_cap("input_0")
        wh = width(self.bw, "h_next")

        def same_range(fp, w_from, w_to):  # mixed widths: h_next's range at the node's own width
            return min(fp + w_to - w_from, max(self.cap, fp)) if w_to > w_from else fp + w_to - w_from

        node = [px if n == "input_0" else min(15, width(self.bw, n) - 1) if n in TABLE
                else same_range(ph, wh, width(self.bw, n)) for n in NODES]
        dense = {g: node[NODES.index(f"w_i{g} * input_0 + bias_{g}")] for g in GATES}
        bias = [same_range(dense[g], width(self.bw, f"w_i{g} * input_0 + bias_{g}"), width(self.bw, f"bias_{g}"))
                for g in GATES]
        return (node, [self.param_fp[f"weight_i{g}"] for g in GATES],
                [self.param_fp[f"weight_h{g}"] for g in GATES], bias)
