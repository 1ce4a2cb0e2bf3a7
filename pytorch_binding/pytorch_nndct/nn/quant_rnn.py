"""What `QuantLSTM` and `QuantGRU` share: the input forms `nn.LSTM` / `nn.GRU` accept and the
checks on inputs and initial states.

Both accept batch_first either way, unbatched input and packed sequences; both convert to a
NumPy batch [B, T, I] (with lengths for packed input; float32 stays float32, which the kernels
read exactly, any other dtype becomes float64, and a float32 caller gets a float32 output
sequence from the kernels, values unchanged), refuse NaN/inf with a catalogued error naming the
module, keep the first test-mode batch for the deploy-check dumps, and restore the caller's
output form.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from nndct_shared.lstm.shard_merge import own_history
from nndct_shared.messages import error
from nndct_shared.quant_mode import RunMode

from ..distributed import default_feedback

_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
"""Float dtypes whose conversions run in NumPy: torch's own dtype conversion of a small tensor
can take milliseconds on a busy machine (its intra-op threads wake up for it), which dominated
small-batch calls; NumPy's cast gives the same IEEE results on one thread."""


def to_float64_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a float64 NumPy array (on the CPU)."""
    t = t.detach().cpu()
    if t.dtype in _NUMPY_DTYPES:
        return t.numpy().astype(np.float64)
    return t.to(torch.float64).numpy()


def to_kernel_numpy(t: torch.Tensor) -> np.ndarray:
    """A sequence tensor as the kernels read it: float32 as it is (no copy on the CPU), any
    other dtype as float64."""
    if t.dtype == torch.float32:
        return t.detach().cpu().numpy()
    return to_float64_numpy(t)


def kernel_out_dtype(dtype: torch.dtype):
    """The dtype the kernels write the output sequence in for a caller's `dtype` (exact in both)."""
    return np.float32 if dtype == torch.float32 else np.float64


def from_numpy_as(a: np.ndarray, device, dtype) -> torch.Tensor:
    """A float32 / float64 NumPy array as a tensor of `dtype` on `device`."""
    if dtype in _NUMPY_DTYPES:
        return torch.from_numpy(a.astype(_NUMPY_DTYPES[dtype], copy=False)).to(device)
    return torch.from_numpy(a).to(device=device, dtype=dtype)


class QuantRnnBase(nn.Module):
    """Common part of the quantized replacements of one `nn.LSTM` / `nn.GRU` (all layers and
    directions). Subclasses set `kind` and build `self.stack`."""

    kind = "RNN"

    def __init__(self, rnn: nn.RNNBase, module_path: str) -> None:
        super().__init__()
        self.module_path = module_path
        self.batch_first = rnn.batch_first
        self.hidden_size = rnn.hidden_size
        self.input_size = rnn.input_size
        self.num_layers = rnn.num_layers
        self.bidirectional = rnn.bidirectional
        self.mode = RunMode.CALIB
        self.first_batch: tuple | None = None
        """The first batch seen in test mode (x, lengths, h0, c0 of batch element 0), kept for the
        deploy-check dumps (as the reference)."""
        self.calib_feedback = default_feedback()
        """"running" (the reference: each step is fake-quantized at the mode of every vote so far)
        or "batch" (each forward call votes with a history of its own, see `own_history`)."""

    @property
    def cells(self):
        return self.stack.cells

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, batch_first={self.batch_first}, mode={self.mode.value}")

    def _calibration_scope(self):
        """Where the stack runs: with "batch" feedback in calib mode, each forward call's
        fix-position votes start from a history of their own (merged afterwards)."""
        if self.mode == RunMode.CALIB and self.calib_feedback == "batch":
            return own_history(self.stack.cells)
        return contextlib.nullcontext()

    def _name(self) -> str:
        return f"{self.kind} '{self.module_path}'"

    def _to_batch_major(self, input):
        """Returns (x [B, T, I] tensor, lengths or None, how to restore the output)."""
        if isinstance(input, PackedSequence):
            padded, lengths = pad_packed_sequence(input, batch_first=True)
            return padded, lengths.numpy().astype(np.int64), "packed"
        if input.dim() == 2:
            return input.unsqueeze(0), None, "unbatched"
        if input.dim() != 3:
            raise error("SHAPE_MISMATCH", what=f"the input of {self._name()}",
                        expected="a 2-D (unbatched) or 3-D tensor", got=f"shape {tuple(input.shape)}")
        return (input if self.batch_first else input.transpose(0, 1)), None, "batched"

    def _numpy_input(self, input):
        """(x [B, T, I] float32 or float64, lengths, kind, device, dtype) of a checked input."""
        x, lengths, kind = self._to_batch_major(input)
        if x.shape[-1] != self.input_size:
            raise error("SHAPE_MISMATCH", what=f"the input features of {self._name()}",
                        expected=self.input_size, got=x.shape[-1])
        x_np = to_kernel_numpy(x)
        bad = int(np.count_nonzero(~np.isfinite(x_np)))
        if bad:
            raise error(self.mode.nonfinite_data_code, name=f"input of {self._name()}", count=bad)
        return x_np, lengths, kind, x.device, x.dtype

    def _numpy_state(self, which: str, state: torch.Tensor, kind: str) -> np.ndarray:
        """An initial state [L*D, B, H] (unbatched input: [L*D, H]) as float64 [L*D, B, H]."""
        s = to_float64_numpy(state)
        if s.shape[0] != len(self.stack.cells):
            raise error("INITIAL_STATES", which=which, got=s.shape[0], module=self.module_path,
                        expected=len(self.stack.cells))
        bad = int(np.count_nonzero(~np.isfinite(s)))
        if bad:
            raise error(self.mode.nonfinite_data_code, name=f"initial state {which} of {self._name()}",
                        count=bad)
        # With packed input, hx is in the original batch order, as the padded x is.
        return s[:, None] if kind == "unbatched" else s

    def _remember(self, x, lengths, h0, c0=None) -> None:
        if self.mode == RunMode.TEST and self.first_batch is None:
            self.first_batch = (x[:1].copy(), None if lengths is None else lengths[:1].copy(),
                                None if h0 is None else h0[:, :1].copy(), None if c0 is None else c0[:, :1].copy())

    def _restore(self, out: np.ndarray, states: list[np.ndarray], lengths, kind: str, device, dtype):
        """The output in the caller's form (packed, unbatched, time-major) and the final states."""
        out_t, states_t = from_numpy_as(out, device, dtype), [from_numpy_as(s, device, dtype) for s in states]
        if kind == "packed":
            out_t = pack_padded_sequence(out_t, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
        elif kind == "unbatched":
            out_t, states_t = out_t[0], [s[:, 0] for s in states_t]
        elif not self.batch_first:
            out_t = out_t.transpose(0, 1)
        return out_t, states_t
