"""Speed of the Keras CNN flow's bias correction against the calibration pass it follows.

A Keras twin of `cnn.py`'s small residual CNN (conv+BN+relu stem, two residual blocks with
`Add`, a stride-2 'same' depthwise conv (captured as a pad node and the conv), global pooling,
Dense) on `--calib-images` images in batches of `--batch`. Each repeat calibrates a fresh
quantizer, then times the calibration pass and `export_quant_config()` (bias correction on, the
default); best of `--repeats` after a warm-up, both in the same run, printed as a ratio.

    python benchmarks/keras_cnn.py [--repeats 5] [--batch 64] [--calib-images 64] [--width 32]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_nndct.quantization.api import tf_quantizer  # noqa: E402

L = keras.layers


def _block(x, width: int):
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(x)))
    y = L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(y))
    return L.ReLU()(L.Add()([x, y]))


def small_resnet(width: int, size: int) -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(inp)))
    x = _block(_block(x, width), width)
    x = L.ReLU()(L.DepthwiseConv2D(3, strides=2, padding="same")(x))
    return keras.Model(inp, L.Dense(10)(L.GlobalAveragePooling2D()(x)), name="SmallResNet")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--calib-images", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    args = p.parse_args()
    logging.getLogger("nndct").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    model = small_resnet(args.width, args.size)
    images = np.random.default_rng(0).standard_normal((args.calib_images, args.size, args.size, 3)).astype(np.float32)
    calib, export = [], []
    for r in range(args.repeats + 1):
        with tempfile.TemporaryDirectory() as out:
            q = tf_quantizer(model, tf.TensorSpec((1, args.size, args.size, 3)), "calib", out)
            start = time.perf_counter()
            for i in range(0, len(images), args.batch):
                q.quant_model(images[i:i + args.batch])
            middle = time.perf_counter()
            q.export_quant_config()
            end = time.perf_counter()
        if r:  # the first round warms up
            calib.append(middle - start)
            export.append(end - middle)
    print(f"Keras SmallResNet width {args.width}, {args.calib_images} images {args.size}x{args.size} "
          f"(batches of {args.batch}), best of {args.repeats}")
    print(f"calibration pass                      {min(calib) * 1e3:9.1f} ms")
    print(f"export_quant_config (bias correction) {min(export) * 1e3:9.1f} ms")
    print(f"ratio: {min(export) / min(calib):.2f}x")


if __name__ == "__main__":
    main()
