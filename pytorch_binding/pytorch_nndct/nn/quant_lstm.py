"""`QuantLSTM`: the drop-in replacement of an `nn.LSTM` in the quantized model.

It accepts everything `nn.LSTM.forward` accepts (batch_first either way, unbatched input, packed
sequences, initial states) and returns the same structures, but computes through the neutral
`QuantizedLstmStack`, i.e. the C++ fixed-point cell shared with the Keras front end.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from nndct_shared.lstm.cell_params import CellWeights
from nndct_shared.lstm.stack import QuantizedLstmStack, RunMode
from nndct_shared.messages import error


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


class QuantLSTM(nn.Module):
    """Quantized replacement of one `nn.LSTM` (all its layers and directions)."""

    def __init__(self, lstm: nn.LSTM, prefix: str, module_path: str, bit_width: int) -> None:
        super().__init__()
        self.module_path = module_path
        self.batch_first = lstm.batch_first
        self.hidden_size = lstm.hidden_size
        self.input_size = lstm.input_size
        self.num_layers = lstm.num_layers
        self.bidirectional = lstm.bidirectional
        self.stack = QuantizedLstmStack(prefix, cell_weights_of(lstm), bit_width)
        self.mode = RunMode.CALIB
        self.first_batch: tuple | None = None
        """The first batch seen in test mode, kept for the deploy-check dumps (as the reference)."""

    @property
    def cells(self):
        return self.stack.cells

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, batch_first={self.batch_first}, mode={self.mode.value}")

    def _to_batch_major(self, input):
        """Returns (x [B, T, I] tensor, lengths or None, how to restore the output)."""
        if isinstance(input, PackedSequence):
            padded, lengths = pad_packed_sequence(input, batch_first=True)
            return padded, lengths.numpy().astype(np.int64), "packed"
        if input.dim() == 2:
            return input.unsqueeze(0), None, "unbatched"
        if input.dim() != 3:
            raise error("SHAPE_MISMATCH", what=f"the input of LSTM '{self.module_path}'",
                        expected="a 2-D (unbatched) or 3-D tensor", got=f"shape {tuple(input.shape)}")
        return (input if self.batch_first else input.transpose(0, 1)), None, "batched"

    def forward(self, input, hx=None):
        x, lengths, kind = self._to_batch_major(input)
        if x.shape[-1] != self.input_size:
            raise error("SHAPE_MISMATCH", what=f"the input features of LSTM '{self.module_path}'",
                        expected=self.input_size, got=x.shape[-1])
        device, dtype = x.device, x.dtype
        # float32 goes to the kernels as it is (read exactly); other dtypes as float64.
        x_np = x.detach().to("cpu", torch.float32 if dtype == torch.float32 else torch.float64).numpy()
        bad = int(np.count_nonzero(~np.isfinite(x_np)))
        if bad:
            raise error("CALIB_DATA_NONFINITE", name=f"input of LSTM '{self.module_path}'", count=bad)
        h0 = c0 = None
        if hx is not None:
            h0, c0 = (s.detach().to("cpu", torch.float64).numpy() for s in hx)
            for which, s in (("h0", h0), ("c0", c0)):
                if s.shape[0] != len(self.stack.cells):
                    raise error("INITIAL_STATES", which=which, got=s.shape[0], module=self.module_path,
                                expected=len(self.stack.cells))
                bad = int(np.count_nonzero(~np.isfinite(s)))
                if bad:
                    raise error("CALIB_DATA_NONFINITE", name=f"initial state {which} of LSTM '{self.module_path}'",
                                count=bad)
            if kind == "unbatched":
                h0, c0 = h0[:, None], c0[:, None]
            # With packed input, hx is in the original batch order, as the padded x is.
        self._remember(x_np, lengths, h0, c0)
        out, h_n, c_n = self.stack.forward(x_np, lengths, h0, c0, self.mode,
                                           out_dtype=np.float32 if dtype == torch.float32 else np.float64)
        to_t = lambda a: torch.from_numpy(a).to(device=device, dtype=dtype)  # noqa: E731
        out_t, h_t, c_t = to_t(out), to_t(h_n), to_t(c_n)
        if kind == "packed":
            out_t = pack_padded_sequence(out_t, torch.from_numpy(lengths), batch_first=True, enforce_sorted=False)
        elif kind == "unbatched":
            out_t, h_t, c_t = out_t[0], h_t[:, 0], c_t[:, 0]
        elif not self.batch_first:
            out_t = out_t.transpose(0, 1)
        return out_t, (h_t, c_t)

    def _remember(self, x, lengths, h0, c0) -> None:
        if self.mode == RunMode.TEST and self.first_batch is None:
            self.first_batch = (x[:1].copy(), None if lengths is None else lengths[:1].copy(),
                                None if h0 is None else h0[:, :1].copy(), None if c0 is None else c0[:, :1].copy())
