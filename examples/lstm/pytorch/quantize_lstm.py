"""Quantize the example's PyTorch LSTM classifier to 16-bit fixed point (RNN quantizer flow).

The reference tool's example flow, on JapaneseVowels (shipped with sktime) instead of
IMDB (which needs a download):

  python examples/lstm/pytorch/quantize_lstm.py --quant_mode calib --subset_len 200
  python examples/lstm/pytorch/quantize_lstm.py --quant_mode test  --subset_len 200 [--deploy]

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
    parser.add_argument("--distributed", action="store_true",
                        help="run as one of the processes torchrun starts (gloo): each takes every "
                             "N-th batch, rank 0 writes the files")
    parser.add_argument("--calib_feedback", choices=("running", "batch"), default=None,
                        help="calibration feedback (default: 'running' in one process, 'batch' with "
                             "--distributed); 'batch' in one process reproduces a distributed run")
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


def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int,
             rank: int = 0, world_size: int = 1) -> float:
    """Top-1 accuracy in percent, batch by batch like the reference example's test(); with
    several processes each runs batches rank, rank + world_size, ... and the counts are summed."""
    correct = 0
    with torch.no_grad():
        for start in range(rank * batch_size, len(x), world_size * batch_size):
            logits = model(torch.from_numpy(x[start:start + batch_size]))
            correct += int((logits.argmax(dim=1).numpy() == y[start:start + batch_size]).sum())
    if world_size > 1:
        import torch.distributed as dist

        total = torch.tensor([correct], dtype=torch.int64)
        dist.all_reduce(total)
        correct = int(total.item())
    return 100.0 * correct / len(x)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world_size = 0, 1
    if args.distributed:  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
        import torch.distributed as dist

        dist.init_process_group("gloo")  # CPU tensors; on GPUs it would be "nccl"
        rank, world_size = dist.get_rank(), dist.get_world_size()
    try:
        return run(args, rank, world_size)
    finally:
        if args.distributed:
            dist.destroy_process_group()


def run(args: argparse.Namespace, rank: int, world_size: int) -> int:
    say = print if rank == 0 else (lambda *_: None)
    _, _, x_test, y_test = load_dataset()
    if args.subset_len is not None:
        x_test, y_test = x_test[:args.subset_len], y_test[:args.subset_len]
    say(f"evaluating on {len(x_test)} JapaneseVowels test sequences"
        + (f" with {world_size} processes" if world_size > 1 else ""))

    model = load_float_model(args.checkpoint)
    say(f"float accuracy: {evaluate(model, x_test, y_test, args.batch_size, rank, world_size):.2f}%")
    if args.quant_mode == "float":
        return 0

    from pytorch_nndct.apis import torch_quantizer

    # The model and the data stay on the CPU (the reference example assumed CUDA).
    quantizer = torch_quantizer(args.quant_mode, model, bitwidth=args.bitwidth, lstm=True,
                                output_dir=args.output_dir, device=torch.device("cpu"),
                                calib_feedback=args.calib_feedback)
    quant_model = quantizer.quant_model
    accuracy = evaluate(quant_model, x_test, y_test, args.batch_size, rank, world_size)
    note = " (while calibrating)" if args.quant_mode == "calib" else ""
    say(f"quantized accuracy: {accuracy:.2f}%{note}")

    # every process calls the export: calibration merges all of them; only rank 0 writes
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
