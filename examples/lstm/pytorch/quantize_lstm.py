"""Quantize the example's PyTorch LSTM classifier to 16-bit fixed point (RNN quantizer flow).

The reference tool's example flow, on JapaneseVowels (shipped with sktime) instead of
IMDB (which needs a download):

  python examples/lstm/pytorch/quantize_lstm.py --quant_mode calib --subset_len 200
  python examples/lstm/pytorch/quantize_lstm.py --quant_mode test  --subset_len 200 [--deploy]

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

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent):  # model.py lives here, data.py one level up
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from cli import add_common_arguments, check_common_arguments  # noqa: E402
from data import load_dataset  # noqa: E402
from model import LstmClassifier  # noqa: E402

DEFAULT_CHECKPOINT = HERE / "pretrained.pth"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, deploy_help="in test mode, also write the deploy-check dumps "
                                             "(export_xmodel(..., deploy_check=True))")
    parser.add_argument("--bitwidth", type=int, default=16, choices=(8, 16),
                        help="fixed-point width of the LSTM (16 for the RNN DPUs)")
    parser.add_argument("--report", action="store_true",
                        help="in test mode, also write the quantization report (quantizer.report)")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="float state_dict (default: the shipped pretrained.pth)")
    args = parser.parse_args(argv)
    check_common_arguments(parser, args, "--checkpoint", args.checkpoint)
    return args


def load_float_model(checkpoint: Path) -> LstmClassifier:
    """The shipped float model; weights_only=True because a state_dict needs no pickled code."""
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    hidden_size, input_size = state_dict["lstm.weight_ih_l0"].shape
    num_classes = state_dict["classifier.weight"].shape[0]
    model = LstmClassifier(input_size=input_size, hidden_size=hidden_size // 4,
                           num_classes=num_classes)
    model.load_state_dict(state_dict)
    return model.eval()


def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Top-1 accuracy in percent, batch by batch like the reference example's test()."""
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[start:start + batch_size]))
            correct += int((logits.argmax(dim=1).numpy() == y[start:start + batch_size]).sum())
    return 100.0 * correct / len(x)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, _, x_test, y_test = load_dataset()
    if args.subset_len is not None:
        x_test, y_test = x_test[:args.subset_len], y_test[:args.subset_len]
    print(f"evaluating on {len(x_test)} JapaneseVowels test sequences")

    model = load_float_model(args.checkpoint)
    print(f"float accuracy: {evaluate(model, x_test, y_test, args.batch_size):.2f}%")
    if args.quant_mode == "float":
        return 0

    from pytorch_nndct.apis import torch_quantizer

    # The model and the data stay on the CPU (the reference example assumed CUDA).
    quantizer = torch_quantizer(args.quant_mode, model, bitwidth=args.bitwidth, lstm=True,
                                output_dir=args.output_dir, device=torch.device("cpu"))
    quant_model = quantizer.quant_model
    accuracy = evaluate(quant_model, x_test, y_test, args.batch_size)
    note = " (while calibrating)" if args.quant_mode == "calib" else ""
    print(f"quantized accuracy: {accuracy:.2f}%{note}")

    if args.quant_mode == "calib":
        quantizer.export_quant_config()
    else:
        quantizer.export_xmodel(args.output_dir, deploy_check=args.deploy)
        if args.report:
            files = quantizer.report(torch.from_numpy(x_test),
                                     eval_fn=lambda m: evaluate(m, x_test, y_test, args.batch_size))
            print(f"report: {files.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
