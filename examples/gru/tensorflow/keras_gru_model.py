"""The float Keras 3 twin of the PyTorch `GruClassifier`, and the weight mapping between them.

Keras' default GRU (reset_after=True) computes what nn.GRU computes: the reset gate multiplies
the recurrent branch of the candidate after the matmul, and each gate has an input and a
recurrent bias. Only the gate order differs: PyTorch stacks r, z, n along the 3H axis, Keras
z, r, h. Mapping:
  GRU kernel           = regroup(weight_ih_l0).T              (F, 3H)
  GRU recurrent_kernel = regroup(weight_hh_l0).T              (H, 3H)
  GRU bias             = [regroup(bias_ih_l0), regroup(bias_hh_l0)]   (2, 3H)
  Dense kernel         = classifier.weight.T                  (H, C)
  Dense bias           = classifier.bias                      (C,)
with regroup moving the blocks r, z, n to z, r, n.
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
    """Sequential Input(T, F) -> GRU(hidden) (last step) -> Dense(classes) logits, with the
    Keras defaults (tanh, recurrent sigmoid, reset_after=True), which are nn.GRU's."""
    return keras.Sequential(
        [
            keras.Input(shape=(timesteps, num_features), name="frames"),
            keras.layers.GRU(hidden_size, name="gru"),
            keras.layers.Dense(num_classes, name="classifier"),
        ],
        name="gru_classifier",
    )


def _regroup(a: np.ndarray) -> np.ndarray:
    """PyTorch's gate blocks r, z, n along axis 0 -> Keras' z, r, h."""
    r, z, n = np.split(a, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def keras_weights_from_torch(state_dict: Mapping[str, object]) -> list[np.ndarray]:
    """Convert the PyTorch `GruClassifier` state_dict to `build_model().set_weights` order."""
    required = ("gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0",
                "classifier.weight", "classifier.bias")
    missing = [k for k in required if k not in state_dict]
    if missing:
        raise KeyError(f"state_dict lacks {missing}; expected a GruClassifier state_dict "
                       "(1-layer unidirectional nn.GRU named 'gru' with bias, Linear 'classifier')")
    a = {k: np.asarray(_to_numpy(state_dict[k]), dtype=np.float32) for k in required}
    return [
        _regroup(a["gru.weight_ih_l0"]).T.copy(),
        _regroup(a["gru.weight_hh_l0"]).T.copy(),
        np.stack([_regroup(a["gru.bias_ih_l0"]), _regroup(a["gru.bias_hh_l0"])]),
        a["classifier.weight"].T.copy(),
        a["classifier.bias"].copy(),
    ]


def _to_numpy(value: object) -> np.ndarray:
    """Accept torch tensors without importing torch (duck-typed on .detach/.cpu/.numpy)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
