"""`python -m nndct_shared.xmodel FILE [--svg OUT] [--attrs]`: list (and draw) an xmodel."""
from __future__ import annotations

import argparse
import os
import sys

from .render import GraphvizNotFoundError, render_svg
from .text_dump import format_xgraph
from .xmodel_io import XModelFormatError, read_xmodel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nndct_shared.xmodel",
        description="Print the ops (name, type, inputs, output shape, fix attrs) and graph "
                    "attrs of an XIR .xmodel file; optionally draw it as SVG.",
    )
    parser.add_argument("file", help="the .xmodel file")
    parser.add_argument("--svg", metavar="OUT", help="also draw the graph to this SVG file")
    parser.add_argument("--attrs", action="store_true", help="print every op attribute")
    args = parser.parse_args(argv)
    try:
        xgraph = read_xmodel(args.file)
    except (XModelFormatError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(format_xgraph(xgraph, all_attrs=args.attrs))
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if args.svg:
        try:
            out = render_svg(xgraph, args.svg)
        except (GraphvizNotFoundError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
