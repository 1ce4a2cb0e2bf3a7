"""The quantize scripts' flow, shared by the LSTM and GRU examples in both frameworks.

The reference tool's example flow on the first N JapaneseVowels test sequences: evaluate the
float model, create the quantizer in 'calib' or 'test' mode, evaluate its `quant_model` (which
calibrates in calib mode), then export: calib writes quant_info.json, test writes the xmodels
(and, with --deploy, the per-frame deploy-check dumps). A script only says how to load its float
model (a Keras script: not even that). Neither torch nor tensorflow is imported at module level.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cli import add_common_arguments, check_common_arguments
from data import load_dataset


def parse_example_args(description: str, framework: str, default_model: Path, train_command: str,
                       argv: list[str] | None = None) -> argparse.Namespace:
    """The options of a quantize script: the common ones, --bitwidth and the float model file
    (`--checkpoint` for framework "torch", `--model_path` for "keras")."""
    torch_side = framework == "torch"
    parser = argparse.ArgumentParser(description=description)
    add_common_arguments(parser, deploy_help="in test mode, also write the deploy-check dumps "
                                             "(export_xmodel(..., deploy_check=True))" if torch_side else
                         "in test mode, also dump the per-timestep cell outputs of the first test "
                         "sequence (dump_rnn_outputs_by_timestep)")
    parser.add_argument("--bitwidth", type=int, default=16, choices=(8, 16),
                        help="fixed-point width of the RNN (16 for the RNN DPUs)")
    if torch_side:
        parser.add_argument("--report", action="store_true",
                            help="in test mode, also write the quantization report (quantizer.report)")
        parser.add_argument("--distributed", action="store_true",
                            help="run as one of the processes torchrun starts (gloo): each takes every "
                                 "N-th batch, rank 0 writes the files")
        parser.add_argument("--calib_feedback", choices=("running", "batch"), default=None,
                            help="calibration feedback (default: 'running' in one process, 'batch' with "
                                 "--distributed); 'batch' in one process reproduces a distributed run")
    flag = "--checkpoint" if torch_side else "--model_path"
    parser.add_argument(flag, type=Path, default=default_model,
                        help="float state_dict (default: the shipped pretrained.pth)" if torch_side else
                        "float Keras model file (default: the shipped pretrained.keras)")
    args = parser.parse_args(argv)
    check_common_arguments(parser, args, flag, getattr(args, flag[2:]), train_command)
    return args


def load_keras_model(path: Path):
    """A shipped float Keras model (architecture and weights in one .keras file)."""
    import keras

    return keras.saving.load_model(path, compile=False)


def torch_accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int, rank: int = 0, world_size: int = 1) -> float:
    """Top-1 accuracy in percent, batch by batch like the reference example's test(); with
    several processes each runs batches rank, rank + world_size, ... and the counts are summed."""
    import torch

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


def keras_accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Top-1 accuracy in percent; eager calls, as the quantized model must run eagerly."""
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = np.asarray(model(x[start:start + batch_size]))
        correct += int((logits.argmax(axis=1) == y[start:start + batch_size]).sum())
    return 100.0 * correct / len(x)


def _test_subset(args: argparse.Namespace, say: Callable[[str], None] = print,
                 world_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    _, _, x_test, y_test = load_dataset()
    if args.subset_len is not None:
        x_test, y_test = x_test[:args.subset_len], y_test[:args.subset_len]
    say(f"evaluating on {len(x_test)} JapaneseVowels test sequences"
        + (f" with {world_size} processes" if world_size > 1 else ""))
    return x_test, y_test


def _print_quantized(accuracy: float, quant_mode: str, say: Callable[[str], None] = print) -> None:
    note = " (while calibrating)" if quant_mode == "calib" else ""
    say(f"quantized accuracy: {accuracy:.2f}%{note}")


def run_torch_example(args: argparse.Namespace, load_float_model: Callable[[Path], object]) -> int:
    """The PyTorch flow; with --distributed, one of the processes torchrun starts (see README
    "Calibrating on several processes"): each takes every N-th batch and rank 0 writes."""
    if not args.distributed:
        return _run_torch(args, load_float_model, 0, 1)
    import torch.distributed as dist

    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; GPUs: "nccl"
    try:
        return _run_torch(args, load_float_model, dist.get_rank(), dist.get_world_size())
    finally:
        dist.destroy_process_group()


def _run_torch(args: argparse.Namespace, load_float_model: Callable[[Path], object], rank: int,
               world_size: int) -> int:
    say = print if rank == 0 else (lambda *_: None)
    x_test, y_test = _test_subset(args, say, world_size)
    model = load_float_model(args.checkpoint)
    say(f"float accuracy: {torch_accuracy(model, x_test, y_test, args.batch_size, rank, world_size):.2f}%")
    if args.quant_mode == "float":
        return 0

    import torch
    from pytorch_nndct.apis import torch_quantizer

    # The model and the data stay on the CPU (the reference example assumed CUDA).
    quantizer = torch_quantizer(args.quant_mode, model, bitwidth=args.bitwidth, lstm=True,
                                output_dir=args.output_dir, device=torch.device("cpu"),
                                calib_feedback=args.calib_feedback)
    accuracy = torch_accuracy(quantizer.quant_model, x_test, y_test, args.batch_size, rank, world_size)
    _print_quantized(accuracy, args.quant_mode, say)
    # every process calls the export: calibration merges all of them; only rank 0 writes
    if args.quant_mode == "calib":
        quantizer.export_quant_config()
    else:
        quantizer.export_xmodel(args.output_dir, deploy_check=args.deploy)
        if args.report:
            files = quantizer.report(torch.from_numpy(x_test),
                                     eval_fn=lambda m: torch_accuracy(m, x_test, y_test, args.batch_size))
            say(f"report: {files.html}")
    return 0


def run_keras_example(args: argparse.Namespace, load_float_model: Callable[[Path], object] = load_keras_model) -> int:
    x_test, y_test = _test_subset(args)
    model = load_float_model(args.model_path)
    print(f"float accuracy: {keras_accuracy(model, x_test, y_test, args.batch_size):.2f}%")
    if args.quant_mode == "float":
        return 0

    import tensorflow as tf
    from tf_nndct.quantization.api import tf_quantizer

    # The signature is checked against the model's inputs (every dimension but the batch).
    input_signature = tf.TensorSpec(x_test[:1].shape, tf.float32)
    quantizer = tf_quantizer(model, input_signature, args.quant_mode, args.output_dir, bitwidth=args.bitwidth)
    _print_quantized(keras_accuracy(quantizer.quant_model, x_test, y_test, args.batch_size), args.quant_mode)
    if args.quant_mode == "calib":
        quantizer.export_quant_config()
    else:
        quantizer.dump_xmodel()
        if args.deploy:
            quantizer.dump_rnn_outputs_by_timestep(x_test[:1])
    return 0
