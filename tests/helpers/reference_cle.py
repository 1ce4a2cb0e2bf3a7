"""The reference's cross-layer equalization, re-stated from the spec for the tests only.

Written from reference-cnn-flow-3x.md ("Cross-layer equalization") with per-channel loops and
numpy float32 scalars, sharing no code with the package (`nndct_shared.algorithms.cle`,
`nndct_shared.cnn.cle`), so that agreement means the package implements the stated rule:

- r_A(c) = max |A's weights of output channel c, extended by A's bias(c) / shrink|;
- r_B(c) = max |B's weights of input channel c|;
- s(c) = r_A(c) / sqrt(r_A(c) r_B(c)) (1 where that root is 0), 1 where r_A(c) + r_B(c) < 0.5;
- A's weights and bias / s, B's weights * s, a ReLU6 between them clips at 6 / s;
- the shrink factor: zero weights replaced by the smallest non-zero magnitude of their channel
  (an all-zero channel by 1e-7 and its bias by 0), magnitudes below 1e-7 by 1e-7, ratios
  |bias| / |w| per weight; small biases (max |bias| < 10 and max |bias| / max |w| < 20) shrink
  by 5 if the median ratio > 100 or the mean > 1000, else 2; others by 20 (median > 30 or
  mean > 500), 10 (median > 15 or mean > 100) or 5.

Layouts are torch's: a conv / linear weight `[O, I/groups, ...]`, a transposed conv `[I, O, ...]`
(groups 1).
"""
from __future__ import annotations

import numpy as np

F32 = np.float32


def shrink_factor(rows: np.ndarray, bias: np.ndarray) -> tuple[int, np.ndarray]:
    """(shrink, bias with all-zero channels zeroed) for A's weights as rows [C, K]."""
    rows = np.array(rows, dtype=F32)
    bias = np.array(bias, dtype=F32)
    kept_bias = bias.copy()
    ratios = []
    largest_w = F32(0)
    for c in range(rows.shape[0]):
        row = rows[c]
        nonzero = [abs(v) for v in row if v != 0]
        if not nonzero:
            kept_bias[c] = 0
            row = np.full(row.shape, F32(1e-7), dtype=F32)
        elif len(nonzero) < row.size:
            smallest = min(nonzero)
            row = np.array([v if v != 0 else smallest for v in row], dtype=F32)
        magnitudes = [max(F32(abs(v)), F32(1e-7)) for v in row]
        largest_w = max(largest_w, max(magnitudes))
        ratios += [F32(abs(kept_bias[c])) / m for m in magnitudes]
    ratios = np.array(ratios, dtype=F32)
    median, mean = np.median(ratios), ratios.mean(dtype=F32)
    top = F32(max(abs(v) for v in bias))
    if top < 10 and top / largest_w < 20:
        return (5 if median > 100 or mean > 1000 else 2), kept_bias
    if median > 30 or mean > 500:
        return 20, kept_bias
    if median > 15 or mean > 100:
        return 10, kept_bias
    return 5, kept_bias


def out_rows(weight: np.ndarray, transposed: bool = False) -> np.ndarray:
    w = np.asarray(weight, dtype=F32)
    if transposed:
        w = np.swapaxes(w, 0, 1)
    return w.reshape(w.shape[0], -1)


def in_channel_max(weight: np.ndarray, c: int, groups: int = 1, transposed: bool = False) -> F32:
    w = np.asarray(weight, dtype=F32)
    if transposed:
        return F32(np.abs(w[c]).max())
    per_group = w.shape[1]
    out_per_group = w.shape[0] // groups
    g, k = divmod(c, per_group)
    return F32(np.abs(w[g * out_per_group:(g + 1) * out_per_group, k]).max())


def pair_scales(wa: np.ndarray, ba: np.ndarray | None, wb: np.ndarray, groups_b: int = 1,
                a_transposed: bool = False, b_transposed: bool = False) -> np.ndarray:
    rows = out_rows(wa, a_transposed)
    if ba is not None:
        shrink, kept = shrink_factor(rows, ba)
    scales = np.ones(rows.shape[0], dtype=F32)
    for c in range(rows.shape[0]):
        r_a = F32(np.abs(rows[c]).max())
        if ba is not None:
            r_a = max(r_a, F32(abs(kept[c] / F32(shrink))))
        r_b = in_channel_max(wb, c, groups_b, b_transposed)
        root = np.sqrt(F32(r_a * r_b))
        s = F32(r_a / root) if root != 0 else F32(1)
        if r_a + r_b < F32(0.5):
            s = F32(1)
        scales[c] = s
    return scales


def apply_pair(wa, ba, wb, scales, groups_b=1, a_transposed=False, b_transposed=False, clip=None):
    """(A's weights, A's bias, B's weights, the clip between them or None), equalized."""
    wa, wb = np.array(wa, dtype=F32), np.array(wb, dtype=F32)
    ba = None if ba is None else np.array(ba, dtype=F32)
    for c, s in enumerate(scales):
        if a_transposed:
            wa[:, c] = wa[:, c] / s
        else:
            wa[c] = wa[c] / s
        if ba is not None:
            ba[c] = ba[c] / s
        if b_transposed:
            wb[c] = wb[c] * s
        else:
            per_group = wb.shape[1]
            out_per_group = wb.shape[0] // groups_b
            g, k = divmod(c, per_group)
            wb[g * out_per_group:(g + 1) * out_per_group, k] *= s
    new_clip = None
    if clip is not None:
        new_clip = np.array([F32(v) / s for v, s in zip(np.broadcast_to(F32(clip), scales.shape), scales)],
                            dtype=F32)
    return wa, ba, wb, new_clip


def equalize_chain(layers: list[dict], clips: dict[int, object] | None = None) -> list[np.ndarray | None]:
    """One pass over a chain of layers (each `{"weight", "bias", "groups", "transposed"}`),
    pairs (0, 1), (1, 2), ...; `clips[k]`: the clip of a ReLU6 between layers k and k + 1.
    Updates the dicts in place; returns the new clip levels per pair (None without a ReLU6)."""
    clips = clips or {}
    out = []
    for k in range(len(layers) - 1):
        a, b = layers[k], layers[k + 1]
        scales = pair_scales(a["weight"], a.get("bias"), b["weight"], b.get("groups", 1),
                             a.get("transposed", False), b.get("transposed", False))
        a["weight"], a["bias"], b["weight"], clip = apply_pair(
            a["weight"], a.get("bias"), b["weight"], scales, b.get("groups", 1),
            a.get("transposed", False), b.get("transposed", False), clips.get(k))
        out.append(clip)
    return out
