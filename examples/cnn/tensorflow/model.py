"""The float Keras 3 twin of the PyTorch `DigitsNet`, and the weight mapping between them.

Why a twin with converted weights: the Keras example quantizes the very same float network as
the PyTorch example (`../checkpoints/digits_net.pth`), so the Keras model is not trained on its
own; `convert_checkpoint.py` converts the state_dict once and writes `digits_net.keras`, which
is what the example loads (no torch needed to run it).

Mapping (PyTorch NCHW, weights [O, I/g, kh, kw]; Keras NHWC, kernels [kh, kw, I/g, O]):
  conv1   Conv2D kernel         = conv1.weight.transpose(2, 3, 1, 0), bias = conv1.bias
  bn1     BatchNormalization    = bn1.weight, bn1.bias, running_mean, running_var (eps 1e-5)
  dw      DepthwiseConv2D kernel = dw.weight [8, 1, 3, 3] -> [3, 3, 8, 1] (relu fused)
  fc      Dense kernel          = fc.weight.T with its 128 rows moved from the NCHW flatten
                                  order (c, h, w) to Keras' NHWC order (h, w, c)
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # digits_data.py is one level up
    sys.path.insert(0, str(HERE.parent))

from digits_data import digits_arrays  # noqa: E402

MODEL_FILE = HERE / "digits_net.keras"


def build_model() -> keras.Model:
    """conv3x3(8)+BN+ReLU, depthwise conv3x3+ReLU, 2x2 max pool, flatten, Dense(10) logits."""
    L = keras.layers
    image = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv1")(image)
    x = L.BatchNormalization(epsilon=1e-5, name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flat")(x)
    return keras.Model(image, L.Dense(10, name="fc")(x), name="DigitsNet")


def keras_weights_from_torch(state_dict: Mapping[str, object]) -> dict[str, list[np.ndarray]]:
    """{layer name: set_weights list} from the PyTorch DigitsNet state_dict (see the mapping)."""
    p = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float32)
         for k, v in state_dict.items()}
    rows = np.moveaxis(np.arange(128).reshape(4, 4, 8), -1, 0).reshape(-1)  # NCHW position -> NHWC row
    fc = np.empty((128, 10), np.float32)
    fc[rows] = p["fc.weight"].T
    return {
        "conv1": [p["conv1.weight"].transpose(2, 3, 1, 0), p["conv1.bias"]],
        "bn1": [p["bn1.weight"], p["bn1.bias"], p["bn1.running_mean"], p["bn1.running_var"]],
        "dw": [p["dw.weight"].transpose(2, 3, 0, 1), p["dw.bias"]],
        "fc": [fc, p["fc.bias"]],
    }


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The PyTorch example's split as NHWC images [N, 8, 8, 1] and labels."""
    x, y = digits_arrays(split)
    return x[..., None], y
