"""Speed of the Keras CNN flow's bias correction against the calibration pass it follows.

A Keras twin of `cnn.py`'s small residual CNN (conv+BN+relu stem, two residual blocks with
`Add`, a stride-2 'same' depthwise conv (captured as a pad node and the conv), global pooling,
Dense) on `--calib-images` images in batches of `--batch`. Each repeat calibrates a fresh
quantizer, then times the calibration pass and `export_quant_config()` (bias correction on, the
default); best of `--repeats` after a warm-up, both in the same run, printed as a ratio.

    python benchmarks/keras_cnn.py [--repeats 5] [--batch 64] [--calib-images 64] [--width 32] [--size 32]
    python benchmarks/keras_cnn.py --grid [--repeats 3]   # widths, sizes and batches; the worst last
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


def time_bias_correction(width: int, size: int, batch: int, images: int, repeats: int) -> tuple[float, float]:
    """Best of `repeats` (after a warm-up) calibration pass and export_quant_config() seconds,
    each repeat on a fresh quantizer."""
    model = small_resnet(width, size)
    data = np.random.default_rng(width + size).standard_normal((images, size, size, 3)).astype(np.float32)
    calib, export = [], []
    for r in range(repeats + 1):
        with tempfile.TemporaryDirectory() as out:
            q = tf_quantizer(model, tf.TensorSpec((1, size, size, 3)), "calib", out)
            start = time.perf_counter()
            for i in range(0, len(data), batch):
                q.quant_model(data[i:i + batch])
            middle = time.perf_counter()
            q.export_quant_config()
            end = time.perf_counter()
        if r:  # the first round warms up
            calib.append(middle - start)
            export.append(end - middle)
    return min(calib), min(export)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--calib-images", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--grid", action="store_true", help="widths 16/24/48, sizes 16/32, batches 1/8/64; the worst last")
    args = p.parse_args()
    logging.getLogger("nndct").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    points = ([(w, s, b) for w in (16, 24, 48) for s in (16, 32) for b in (1, 8, 64)] if args.grid
              else [(args.width, args.size, args.batch)])
    print(f"Keras SmallResNet, {args.calib_images} images, best of {args.repeats}")
    print(f"{'width':>5} {'size':>4} {'batch':>5} {'calib ms':>9} {'export ms':>9} {'ratio':>6}")
    rows = []
    for width, size, batch in points:
        calib, export = time_bias_correction(width, size, batch, args.calib_images, args.repeats)
        rows.append((export / calib, width, size, batch))
        print(f"{width:>5} {size:>4} {batch:>5} {calib * 1e3:9.1f} {export * 1e3:9.1f} {export / calib:6.2f}x",
              flush=True)
    worst = max(rows)
    print(f"worst: {worst[0]:.2f}x (width {worst[1]}, {worst[2]}x{worst[2]}, batch {worst[3]})")


if __name__ == "__main__":
    main()
