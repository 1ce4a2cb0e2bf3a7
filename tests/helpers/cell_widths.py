"""Per-tensor widths of a cell resolved by hand from node classes (the tests' independent
statement of what a mixed-width config sets; nndct_shared.lstm.width_config resolves the same)."""
from __future__ import annotations

import json
from pathlib import Path

from nndct_shared.lstm.cell_definition import CellDefinition
from nndct_shared.lstm.widths import tensor_class


def widths_by_class(definition: CellDefinition, by_class: dict[str, int], default: int = 16,
                    **overrides: int) -> dict[str, int]:
    """name -> width for every node and parameter: its class's width in `by_class`, else
    `default`; `overrides` (class -> width) replace classes after that."""
    out = {}
    for name in (*definition.node_names, *definition.param_names):
        cls = tensor_class(definition, name)
        out[name] = overrides.get(cls, by_class.get(cls, default))
    return out


def assert_recorded_widths(quant_info_path, graphs, widths, definition: CellDefinition) -> None:
    """Every record of the cells `graphs` in a quant_info.json carries its tensor's own width
    (`widths[k]` of graph k)."""
    qi = json.loads(Path(quant_info_path).read_text())
    for k, graph in enumerate(graphs):
        for name, w in widths[k].items():
            section = "param" if name in definition.param_names else "output"
            assert qi[section][f"{graph}::{name}"][0] == w, (graph, name)
