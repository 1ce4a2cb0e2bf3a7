"""The command line both CNN examples share (the user guide's resnet18_quant.py options)."""
from __future__ import annotations

import argparse

__all__ = ["parse_args"]


def parse_args(add_own=None, argv: list[str] | None = None) -> argparse.Namespace:
    """--quant_mode float|calib|test, --subset_len, --batch_size, --deploy, --output_dir,
    --config_file, --target, --bitwidth, plus what `add_own(parser)` adds; --deploy needs a
    single test image (batch 1), as the guide's xmodel export does."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quant_mode", default="calib", choices=["float", "calib", "test"])
    parser.add_argument("--subset_len", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--deploy", action="store_true")
    parser.add_argument("--output_dir", default="quantize_result")
    parser.add_argument("--config_file", default=None)
    parser.add_argument("--target", default=None)
    parser.add_argument("--bitwidth", type=int, default=8)
    if add_own is not None:
        add_own(parser)
    args = parser.parse_args(argv)
    if args.deploy and (args.quant_mode != "test" or args.batch_size != 1 or args.subset_len != 1):
        parser.error("--deploy needs --quant_mode test --batch_size 1 --subset_len 1")
    return args
