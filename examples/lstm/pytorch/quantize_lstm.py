"""Quantize the example's PyTorch LSTM classifier to 16-bit fixed point (RNN quantizer flow).

The reference tool's example flow, on JapaneseVowels (shipped with sktime) instead of
IMDB (which needs a download):

  python examples/lstm/pytorch/quantize_lstm.py --quant_mode calib --subset_len 200
  python examples/lstm/pytorch/quantize_lstm.py --quant_mode test  --subset_len 200 [--deploy] [--bitwidth 8]

On several processes (see README "Calibrating on several processes"), e.g. 4 on this machine:

  torchrun --standalone --nproc_per_node 4 examples/lstm/pytorch/quantize_lstm.py \
      --quant_mode calib --subset_len 200 --distributed
  torchrun --standalone --nproc_per_node 4 examples/lstm/pytorch/quantize_lstm.py \
      --quant_mode test --subset_len 200 --distributed [--deploy]

Each process takes every N-th batch (rank r: batches r, r + N, ...), the accuracies are summed
over the processes, and rank 0 writes the files: the same quant_info.json as one process with
--calib_feedback batch, and the same xmodel and dumps (rank 0 sees the first batch).

calib: evaluates the float model, wraps it with `torch_quantizer(..., lstm=True)`, runs
       the first N test sequences through the quantized model (which calibrates the fix
       positions) and writes <output_dir>/quant_info.json.
test:  reads quant_info.json, evaluates the quantized model and writes
       <output_dir>/xmodel/*.xmodel (plus deploy-check dumps with --deploy; with --report
       also quant_report.html / .json and the suggested per-cell-node config, see the README's
       "Finding where precision is lost").
float: evaluates the float model only.
Both the calibration and the evaluation use the first N test sequences, as the reference
example does; the dataset loader interleaves the speakers so any prefix spans all nine.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent):  # model.py lives here, data.py one level up
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from model import LstmClassifier  # noqa: E402
from quantize_flow import parse_example_args, run_torch_example  # noqa: E402

DEFAULT_CHECKPOINT = HERE / "pretrained.pth"


def parse_args(argv: list[str] | None = None):
    return parse_example_args(__doc__.splitlines()[0], "torch", DEFAULT_CHECKPOINT,
                            "python examples/lstm/train_float_models.py", argv)


def load_float_model(checkpoint: Path) -> LstmClassifier:
    """The shipped float model; weights_only=True because a state_dict needs no pickled code."""
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hidden_size, input_size = state_dict["lstm.weight_ih_l0"].shape
    num_classes = state_dict["classifier.weight"].shape[0]
    model = LstmClassifier(input_size=input_size, hidden_size=hidden_size // 4,
                           num_classes=num_classes)
    model.load_state_dict(state_dict)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    return run_torch_example(parse_args(argv), load_float_model)


if __name__ == "__main__":
    raise SystemExit(main())
