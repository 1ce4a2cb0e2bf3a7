"""The float Keras 3 twin of the PyTorch `LstmClassifier`, and the weight mapping between them.

Why a twin with copied weights: the Keras example must quantize the very same float
network as the PyTorch example, so the Keras model is not trained on its own; its
weights are converted from the PyTorch state_dict (see `keras_weights_from_torch`) and
both frameworks' float predictions agree to float32 rounding.

Mapping (both frameworks order the four gates i, f, g(c), o along the 4*H axis, so no
gate reordering is needed):
  LSTM kernel           = weight_ih_l0.T          (F, 4H)
  LSTM recurrent_kernel = weight_hh_l0.T          (H, 4H)
  LSTM bias             = bias_ih_l0 + bias_hh_l0 (4H,)   (Keras has one bias per gate)
  Dense kernel          = classifier.weight.T     (H, C)
  Dense bias            = classifier.bias         (C,)
"""
from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np

NUM_FEATURES = 12
NUM_CLASSES = 9
HIDDEN_SIZE = 32


def build_model(timesteps: int | None = None, num_features: int = NUM_FEATURES,
                hidden_size: int = HIDDEN_SIZE, num_classes: int = NUM_CLASSES) -> keras.Model:
    """Sequential Input(T, F) -> LSTM(hidden) (last step) -> Dense(classes) logits.

    Activations are the Keras defaults (tanh, recurrent sigmoid), which are the PyTorch
    LSTM's; the RNN quantizer requires the sigmoid recurrent activation.
    """
    return keras.Sequential(
        [
            keras.Input(shape=(timesteps, num_features), name="frames"),
            keras.layers.LSTM(hidden_size, name="lstm"),
            keras.layers.Dense(num_classes, name="classifier"),
        ],
        name="lstm_classifier",
    )


def keras_weights_from_torch(state_dict: Mapping[str, object]) -> list[np.ndarray]:
    """Convert the PyTorch `LstmClassifier` state_dict to `build_model().set_weights` order."""
    required = ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                "lstm.bias_hh_l0", "classifier.weight", "classifier.bias")
    missing = [k for k in required if k not in state_dict]
    if missing:
        raise KeyError(f"state_dict lacks {missing}; expected a LstmClassifier state_dict "
                       "(1-layer unidirectional nn.LSTM named 'lstm' with bias, Linear 'classifier')")
    arrays = {k: np.asarray(_to_numpy(state_dict[k]), dtype=np.float32) for k in required}
    return [
        arrays["lstm.weight_ih_l0"].T.copy(),
        arrays["lstm.weight_hh_l0"].T.copy(),
        arrays["lstm.bias_ih_l0"] + arrays["lstm.bias_hh_l0"],
        arrays["classifier.weight"].T.copy(),
        arrays["classifier.bias"].copy(),
    ]


def _to_numpy(value: object) -> np.ndarray:
    """Accept torch tensors without importing torch (duck-typed on .detach/.cpu/.numpy)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
