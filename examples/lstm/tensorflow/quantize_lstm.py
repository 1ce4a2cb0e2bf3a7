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

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # data.py is one level up
    sys.path.insert(0, str(HERE.parent))

from quantize_flow import load_keras_model, parse_example_args, run_keras_example  # noqa: E402

DEFAULT_MODEL = HERE / "pretrained.keras"


def parse_args(argv: list[str] | None = None):
    return parse_example_args(__doc__.splitlines()[0], "keras", DEFAULT_MODEL,
                              "python examples/lstm/train_float_models.py", argv)


def main(argv: list[str] | None = None) -> int:
    return run_keras_example(parse_args(argv), load_keras_model)


if __name__ == "__main__":
    raise SystemExit(main())
