"""Quantize the example's Keras LSTM classifier to 16-bit fixed point (RNN quantizer flow).

Same data and the same float network as the PyTorch example (the Keras weights are the
PyTorch ones, converted), following the reference tool's Keras example:

  python examples/lstm/tensorflow/quantize_lstm.py --quant_mode calib --subset_len 200
  python examples/lstm/tensorflow/quantize_lstm.py --quant_mode test  --subset_len 200 [--deploy]

calib: evaluates the float model, builds `tf_quantizer(model, input_signature, 'calib',
       output_dir, bitwidth=16)`, runs the first N test sequences through `quant_model`
       and writes <output_dir>/quant_info.json.
test:  reads quant_info.json, evaluates `quant_model`, writes <output_dir>/xmodel/ and,
       with --deploy, the per-timestep outputs of the first test sequence
       (`dump_rnn_outputs_by_timestep(x[:1])`, batch 1 as the tool requires).
float: evaluates the float model only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # data.py is one level up
    sys.path.insert(0, str(HERE.parent))

from cli import add_common_arguments, check_common_arguments  # noqa: E402
from data import load_dataset  # noqa: E402

DEFAULT_MODEL = HERE / "pretrained.keras"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, deploy_help="in test mode, also dump the per-timestep cell outputs "
                                             "of the first test sequence (dump_rnn_outputs_by_timestep)")
    parser.add_argument("--model_path", type=Path, default=DEFAULT_MODEL,
                        help="float Keras model file (default: the shipped pretrained.keras)")
    args = parser.parse_args(argv)
    check_common_arguments(parser, args, "--model_path", args.model_path)
    return args


def load_float_model(path: Path):
    """The shipped float Keras model (architecture and weights in one .keras file)."""
    import keras

    return keras.saving.load_model(path, compile=False)


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Top-1 accuracy in percent; eager calls, as the quantized model must run eagerly."""
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = np.asarray(model(x[start:start + batch_size]))
        correct += int((logits.argmax(axis=1) == y[start:start + batch_size]).sum())
    return 100.0 * correct / len(x)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, _, x_test, y_test = load_dataset()
    if args.subset_len is not None:
        x_test, y_test = x_test[:args.subset_len], y_test[:args.subset_len]
    print(f"evaluating on {len(x_test)} JapaneseVowels test sequences")

    model = load_float_model(args.model_path)
    print(f"float accuracy: {evaluate(model, x_test, y_test, args.batch_size):.2f}%")
    if args.quant_mode == "float":
        return 0

    import tensorflow as tf
    from tf_nndct.quantization.api import tf_quantizer

    # The signature is checked against the model's inputs (every dimension but the batch).
    input_signature = tf.TensorSpec(x_test[:1].shape, tf.float32)
    quantizer = tf_quantizer(model, input_signature, args.quant_mode, args.output_dir,
                             bitwidth=16)
    quant_model = quantizer.quant_model
    accuracy = evaluate(quant_model, x_test, y_test, args.batch_size)
    note = " (while calibrating)" if args.quant_mode == "calib" else ""
    print(f"quantized accuracy: {accuracy:.2f}%{note}")

    if args.quant_mode == "calib":
        quantizer.export_quant_config()
    else:
        quantizer.dump_xmodel()
        if args.deploy:
            quantizer.dump_rnn_outputs_by_timestep(x_test[:1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
