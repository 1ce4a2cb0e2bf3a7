"""Quantize the example's Keras GRU classifier to 16- or 8-bit fixed point (RNN quantizer flow).

The same data and the same float network as the PyTorch GRU example (the Keras weights are the
PyTorch ones, regrouped), through `tf_quantizer`:

  python examples/gru/tensorflow/quantize_gru.py --quant_mode calib --subset_len 200
  python examples/gru/tensorflow/quantize_gru.py --quant_mode test  --subset_len 200 [--deploy]

calib: evaluates the float model, builds `tf_quantizer(model, input_signature, 'calib',
       output_dir, bitwidth)`, runs the first N test sequences through `quant_model` and writes
       <output_dir>/quant_info.json.
test:  reads quant_info.json, evaluates `quant_model`, writes <output_dir>/xmodel/ and, with
       --deploy, the per-timestep cell outputs of the first test sequence. These files equal
       the PyTorch script's byte for byte.
float: evaluates the float model only.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LSTM_EXAMPLE = HERE.parents[1] / "lstm"  # the dataset loader and the flow
if str(LSTM_EXAMPLE) not in sys.path:
    sys.path.insert(0, str(LSTM_EXAMPLE))

from quantize_flow import load_keras_model, parse_example_args, run_keras_example  # noqa: E402

DEFAULT_MODEL = HERE / "pretrained.keras"


def parse_args(argv: list[str] | None = None):
    return parse_example_args(__doc__.splitlines()[0], "keras", DEFAULT_MODEL,
                              "python examples/gru/train_gru.py", argv)


def main(argv: list[str] | None = None) -> int:
    return run_keras_example(parse_args(argv), load_keras_model)


if __name__ == "__main__":
    raise SystemExit(main())
