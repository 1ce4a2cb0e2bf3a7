"""`QuantRNN`: what the Keras layers replacing an `LSTM` / `GRU` (or a `Bidirectional` of them)
share.

Why one layer for a whole Bidirectional: a Keras `Bidirectional(LSTM)` is one layer of the user's
model (one name, one output), and its two directions are the forward and backward cells of one
neutral stack, exactly as one bidirectional `nn.LSTM` / `nn.GRU` layer is in PyTorch. The
computation is the neutral stack's (the shared C++ cells), so the same weights give the same bits
as the PyTorch flow.

The layer returns what the float layer returns: `return_sequences`, `return_state`,
`go_backwards` (processing-order outputs, as Keras) and the `Bidirectional` merge modes.
Eagerly it calls the stack directly (clean errors, no copies); inside a `tf.function`
(e.g. `model.predict`) it goes through `tf.numpy_function`. A subclass says how many states a
direction has (LSTM: h and c; GRU: h) and how they reach its stack.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from nndct_shared.quant_mode import RunMode
from nndct_shared.messages import NndctError, error, use_frontend

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@dataclass(frozen=True)
class RnnLayout:
    """What the float layer returns, independent of how it computes."""

    units: int
    return_sequences: bool
    return_state: bool
    go_backwards: bool = False
    bidirectional: bool = False
    merge_mode: str | None = "concat"

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1


class QuantRNN(keras.layers.Layer):
    """The quantized twin of one Keras RNN layer (or Bidirectional wrapper)."""

    kind = "RNN"
    """The layer type named in errors ("LSTM", "GRU")."""
    states_per_direction = 1
    unsupported_code = "UNSUPPORTED_RNN"
    """The catalogue code of this kind's unsupported-feature error (masks)."""

    def __init__(self, stack, layout: RnnLayout, layer_path: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.stack = stack
        self.layout = layout
        self.layer_path = layer_path
        self.mode = RunMode.CALIB
        self.capture_next = False
        """When set, the next eager call keeps batch element 0 of its inputs (for the dumps)."""
        self.captured: tuple | None = None
        """(x, lengths, h0, c0) of batch element 0, as the session's FirstBatch takes them."""
        self.supports_masking = True  # so that Keras hands a mask to call(), which refuses it

    # ------------------------------------------------------------------ what a subclass provides
    def _forward(self, x: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """(out [B, T, D*H] float32, final states [D, B, H] per state kind) of the stack;
        `states` is Keras' flat initial-state list (empty: zeros)."""
        raise NotImplementedError

    def _capture(self, x: np.ndarray, states: list[np.ndarray]) -> tuple:
        raise NotImplementedError

    # ------------------------------------------------------------------ shapes (no numeric call)
    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        lay = self.layout
        width = lay.units * (2 if lay.bidirectional and lay.merge_mode == "concat" else 1)
        out = (batch, steps, width) if lay.return_sequences else (batch, width)
        outputs = [out, out] if lay.bidirectional and lay.merge_mode is None else [out]
        if lay.return_state:
            outputs += [(batch, lay.units)] * (self.states_per_direction * lay.directions)
        return outputs[0] if len(outputs) == 1 else outputs

    # ------------------------------------------------------------------ the call
    def call(self, sequences, initial_state=None, mask=None, training=None):
        try:
            return self._call(sequences, initial_state, mask)
        except NndctError as exc:
            # Keras re-creates exceptions raised in call() to add argument info, which would drop
            # the catalogue ID; this marker tells it the error is already informative.
            exc._keras_call_info_injected = True
            raise

    def _call(self, sequences, initial_state, mask):
        with use_frontend("tf"):
            if mask is not None:
                raise error(self.unsupported_code, module=self.layer_path,
                            feature="a sequence mask (Embedding(mask_zero=True) or Masking)")
            states = self._state_list(initial_state)
            outputs = 1 + self.states_per_direction
            if tf.executing_eagerly():
                arrays = self._run(_numpy(sequences), *[_numpy(s) for s in states])
                # Only what the outputs read becomes a tensor (a conversion costs as much as a
                # short forward at batch 1).
                results = [tf.convert_to_tensor(a) if used else None for a, used in zip(arrays, self._used_results())]
            else:
                results = tf.numpy_function(self._run, [sequences, *states], [tf.float32] * outputs,
                                            stateful=True)
                self._set_static_shapes(sequences, results)
            return self._keras_outputs(*results)

    def _used_results(self) -> tuple[bool, ...]:
        """Which of (out, h_n, other final states...) `_keras_outputs` reads for this layout."""
        lay = self.layout
        return (lay.return_sequences, not lay.return_sequences or lay.return_state,
                *([lay.return_state] * (self.states_per_direction - 1)))

    def _state_list(self, initial_state) -> list:
        if initial_state is None:
            return []
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        expected = self.states_per_direction * self.layout.directions
        if len(states) != expected:
            raise error("INITIAL_STATES", which="initial_state", got=len(states), module=self.layer_path,
                        expected=expected)
        return states

    def _run(self, x, *states):
        """numpy in, numpy out: (out [B, T, D*H] aligned with the inputs, final states [D, B, H])."""
        with use_frontend("tf"):
            x = np.asarray(x)
            if x.ndim != 3 or x.shape[-1] != self.stack.input_size:
                raise error("SHAPE_MISMATCH", what=f"the input of {self.kind} layer '{self.layer_path}'",
                            expected=f"[batch, steps, {self.stack.input_size}]", got=f"shape {list(x.shape)}")
            # float32 goes to the kernels as it is (read exactly); other dtypes as float64.
            xs = x if x.dtype == np.float32 else x.astype(np.float64)
            bad = int(np.count_nonzero(~np.isfinite(xs)))
            if bad:
                raise error(self.mode.nonfinite_data_code, name=f"input of {self.kind} layer '{self.layer_path}'",
                            count=bad)
            states = [np.asarray(s, dtype=np.float64) for s in states]
            if self.capture_next:
                self.captured = self._capture(xs, states)
                self.capture_next = False
            return tuple(a.astype(np.float32, copy=False) for a in self._forward(xs, states))

    def _set_static_shapes(self, sequences, results) -> None:
        batch, steps = sequences.shape[0], sequences.shape[1]
        width, units = self.layout.directions * self.layout.units, self.layout.units
        results[0].set_shape((batch, steps, width))
        for final in results[1:]:
            final.set_shape((self.layout.directions, batch, units))

    def _keras_outputs(self, out, *finals):
        lay = self.layout
        units = lay.units
        h_n = finals[0]
        if lay.bidirectional:
            if lay.return_sequences:
                fw, bw = out[:, :, :units], out[:, :, units:]
            else:
                fw, bw = h_n[0], h_n[1]
            merged = _merge(fw, bw, lay.merge_mode)
            outputs = list(merged) if lay.merge_mode is None else [merged]
        elif lay.return_sequences:
            # Keras returns a go_backwards layer's sequence in processing order.
            outputs = [tf.reverse(out, axis=[1]) if lay.go_backwards else out]
        else:
            outputs = [h_n[0]]
        if lay.return_state:
            for d in range(lay.directions):
                outputs += [final[d] for final in finals]
        return outputs[0] if len(outputs) == 1 else outputs

    def get_config(self):
        raise NotImplementedError(
            f"Quant{self.kind} layers hold the calibration state of a tf_quantizer session and cannot "
            "be serialized; save the float model and re-create the quantizer instead.")


def _numpy(value) -> np.ndarray:
    """An eager tensor's values without the copy-keyword deprecation path of np.asarray."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _merge(fw, bw, mode):
    if mode == "concat":
        return tf.concat([fw, bw], axis=-1)
    if mode == "sum":
        return fw + bw
    if mode == "mul":
        return fw * bw
    if mode == "ave":
        return (fw + bw) / 2
    return fw, bw
