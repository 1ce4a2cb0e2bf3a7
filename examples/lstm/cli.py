"""Command-line options shared by the PyTorch and Keras example scripts of the LSTM and GRU
examples (the reference example's `--quant_mode` / `--subset_len` flow), so every script accepts
and checks them identically."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_common_arguments(parser: argparse.ArgumentParser, deploy_help: str) -> None:
    parser.add_argument("--quant_mode", choices=("calib", "test", "float"), default="calib",
                        help="calib: calibrate and export quant_info.json; test: evaluate "
                             "the quantized model and export the xmodel; float: float only")
    parser.add_argument("--subset_len", type=int, default=None,
                        help="use the first N test sequences (default: all 370)")
    parser.add_argument("--batch_size", type=int, default=50)
    parser.add_argument("--deploy", action="store_true", help=deploy_help)
    parser.add_argument("--output_dir", default="quantize_result",
                        help="where the quantizer writes its files (default: quantize_result)")


def check_common_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace,
                           model_flag: str, model_file: Path,
                           train_command: str = "python examples/lstm/train_float_models.py") -> None:
    """Rejects bad sizes and a missing float model through `parser.error` (exit code 2)."""
    if args.batch_size < 1:
        parser.error(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.subset_len is not None and args.subset_len < 1:
        parser.error(f"--subset_len must be >= 1, got {args.subset_len}")
    if not model_file.is_file():
        parser.error(f"{model_flag} {model_file} does not exist; create it with: {train_command}")
