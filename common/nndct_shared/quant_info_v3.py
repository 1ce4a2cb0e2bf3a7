"""quant_info.json of the CNN flow: the vai_q_pytorch 3.x format, read in both of its forms.

vai_q_pytorch 3.x writes every entry as a list of `[bit_width, fix_pos]` pairs, one per output
of the node (`"LeNet::conv1.weight": [[8, 8]]`), and four more top-level keys:
`fast_finetuned`, `bias_corrected`, `version` (the writing tool) and `graph_md5` (a hash of the
calibrated graph). Releases 1.x/2.x (and this project before it followed 3.x) wrote a single
pair per entry (`[8, 6]`) and nothing else; both forms are in users' hands, so `read_record`
reads both (`QuantRecord.layout` says which) and the CNN session matches their names to the
model. The LSTM flow keeps the single-pair form of the RNN quantizer (`nndct_shared.quant_info`).

Layout written (`to_json_text_v3`): the single-pair file's layout (`nndct_shared.quant_info`,
one entry per line, no blanks inside an entry) with `[[bw,fp]]` entries, then the four keys,
one per line, in the order above.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import __version__
from .quant_info import (
    QuantEntry,
    QuantInfo,
    check_sections,
    corrupt,
    entry_text,
    load_document,
    parse_entry,
)

__all__ = ["LAYOUT_3X", "LAYOUT_SINGLE_PAIR", "RECORD_KEYS", "TOOL_VERSION", "QuantRecord",
           "read_record", "to_json_text_v3"]

#: The top-level keys the 3.x format adds after the three sections, in file order.
RECORD_KEYS: tuple[str, ...] = ("fast_finetuned", "bias_corrected", "version", "graph_md5")
#: What this project writes as "version" (the reference writes its own release, e.g. "3.5.0").
TOOL_VERSION = f"nndct-fixpoint {__version__}"

LAYOUT_3X = "3.x"
LAYOUT_SINGLE_PAIR = "1.x"


@dataclass
class QuantRecord:
    """A CNN calibration result: the entries (`info`, one pair per node output) and the 3.x keys.

    `multi_output` holds 3.x entries with other than one pair (a node of more than one output in
    the writer's graph; this flow's nodes have one). `layout` is `LAYOUT_3X` or
    `LAYOUT_SINGLE_PAIR` (then the four keys are None: the file has none)."""

    info: QuantInfo
    fast_finetuned: bool | None = False
    bias_corrected: bool | None = False
    version: str | None = TOOL_VERSION
    graph_md5: str | None = None
    layout: Literal["3.x", "1.x"] = LAYOUT_3X
    multi_output: dict[str, list[QuantEntry]] = field(default_factory=dict)

    @property
    def source(self) -> Path | None:
        return self.info.source


def to_json_text_v3(record: QuantRecord) -> str:
    """Render `record` in the 3.x format (see the module docstring)."""
    blocks = []
    for section, table in record.info.sections():
        lines = [f"    {json.dumps(name, ensure_ascii=False)}:[{entry_text(value, section, name)}]"
                 for name, value in table.items()]
        blocks.append(f'  "{section}":\n  {{\n' + ",\n".join(lines) + "\n  }")
    values = (bool(record.fast_finetuned), bool(record.bias_corrected), record.version or TOOL_VERSION,
              record.graph_md5 or "")
    blocks += [f"  {json.dumps(key)}:{json.dumps(value, ensure_ascii=False)}"
               for key, value in zip(RECORD_KEYS, values)]
    return "{\n" + ",\n".join(blocks) + "\n}"


def _is_pair_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, list) for v in value)


def _record_keys(source: Path, document: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, kind in zip(RECORD_KEYS, (bool, bool, str, str)):
        value = document[key]
        if not isinstance(value, kind):
            raise corrupt(source, f'"{key}" is {value!r}; expected a {kind.__name__}.')
        out[key] = value
    return out


def read_record(path: str | os.PathLike[str], shown_as: str | os.PathLike[str] | None = None) -> QuantRecord:
    """Read a CNN quant_info.json in the 3.x or the single-pair format, strictly (the entry checks
    and QUANT_INFO_CORRUPT messages of `nndct_shared.quant_info.read_quant_info`, naming
    `shown_as` when given; a file mixing the two entry forms, or with some but not all of the 3.x
    keys, is corrupt too)."""
    source = Path(path if shown_as is None else shown_as)
    document = load_document(path, shown_as)
    layout = LAYOUT_3X if any(key in document for key in RECORD_KEYS) else LAYOUT_SINGLE_PAIR
    check_sections(source, document, RECORD_KEYS if layout == LAYOUT_3X else ())
    info = QuantInfo(source=source)
    multi: dict[str, list[QuantEntry]] = {}
    for section, table in info.sections():
        for name, value in document[section].items():
            if layout == LAYOUT_SINGLE_PAIR:
                if _is_pair_list(value) and value:
                    raise corrupt(source, f'entry "{name}" in "{section}" is a list of pairs (the 3.x '
                                          f'form) but the file lacks the 3.x keys {", ".join(RECORD_KEYS)}.')
                table[name] = parse_entry(source, value, section, name)
                continue
            if not _is_pair_list(value) or not value:
                raise corrupt(source, f'entry "{name}" in "{section}" is {value!r}; the 3.x format has '
                                      "a list of [bit_width, fix_pos] pairs per entry, e.g. [[8, 6]].")
            pairs = [parse_entry(source, v, section, name) for v in value]
            if len(pairs) == 1:
                table[name] = pairs[0]
            else:
                multi[name] = pairs
    if layout == LAYOUT_SINGLE_PAIR:
        return QuantRecord(info, None, None, None, None, LAYOUT_SINGLE_PAIR)
    keys = _record_keys(source, document)
    return QuantRecord(info, keys["fast_finetuned"], keys["bias_corrected"], keys["version"],
                       keys["graph_md5"], LAYOUT_3X, multi)
