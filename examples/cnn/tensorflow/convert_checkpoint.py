"""Writes digits_net.keras: the PyTorch example's trained DigitsNet as a Keras model.

    python examples/cnn/tensorflow/convert_checkpoint.py

Needs torch only here (to read ../checkpoints/digits_net.pth with weights_only=True); the
Keras example then loads the .keras file. The float predictions of both models agree to float32
rounding (checked before writing).
"""
from __future__ import annotations

import numpy as np
import torch

from model import HERE, MODEL_FILE, build_model, digits, keras_weights_from_torch

from digits_net import DigitsNet  # ../digits_net.py (model.py puts .. on sys.path)


def main() -> None:
    state = torch.load(HERE.parent / "checkpoints" / "digits_net.pth", map_location="cpu", weights_only=True)
    model = build_model()
    for name, weights in keras_weights_from_torch(state).items():
        model.get_layer(name).set_weights(weights)
    torch_model = DigitsNet()
    torch_model.load_state_dict(state)
    x, _ = digits("test")
    with torch.no_grad():
        expected = torch_model.eval()(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()
    np.testing.assert_allclose(np.asarray(model(x)), expected, rtol=1e-5, atol=1e-5)
    model.save(MODEL_FILE)
    print(f"saved {MODEL_FILE}")


if __name__ == "__main__":
    main()
