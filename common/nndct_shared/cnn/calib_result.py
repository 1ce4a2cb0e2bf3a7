"""Matching a CNN calibration result (quant_info.json, either format) to the model in test mode.

Why: the file may come from this project or from vai_q_pytorch, in the 3.x format (nndct names,
`graph_md5`, `version`) or the older single-pair one (traced names such as `FFN::FFN/input.2`),
and test mode must apply it to the right tensors or say precisely why it cannot:

- single-pair files name nodes as the front end traced them: each name is matched to the node
  of that traced name (`CapturedModel.traced_names`; a param named after its node, `<node>.other`,
  follows it); names traced by another tool (TorchScript's `input.2` where ours says `relu`) are
  matched by module scope (the name up to its last `/`) and order, where a scope holds as many
  unmatched entries in the file as unmatched quantized outputs in the model;
- what is still unmatched is reported by the usual CALIB_RESULT_MISMATCH (names on both sides);
- a 3.x file written by this tool's version must carry this graph's `graph_md5`
  (CALIB_GRAPH_MISMATCH otherwise, naming both hashes and what the hash covers); a file written
  by another version or tool (the reference: its release, e.g. "3.5.0") gets the warning
  CALIB_VERSION_MISMATCH naming both versions, since its hash is another program's and cannot
  be compared, and its names were checked one by one.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from nndct_shared.graph import SCOPE_SEPARATOR
from nndct_shared.messages import error, note, warn
from nndct_shared.quant_info import QuantEntry, QuantInfo, corrupt
from nndct_shared.quant_info_v3 import LAYOUT_SINGLE_PAIR, TOOL_VERSION, QuantRecord

__all__ = ["check_provenance", "match_traced_names", "refuse_multi_output"]


def _scope(name: str) -> str:
    model, sep, local = name.partition(SCOPE_SEPARATOR)
    if not sep or "/" not in local:
        return name
    return f"{model}{sep}{local.rsplit('/', 1)[0]}"


def _rename_params(table: dict[str, QuantEntry], by_traced: Mapping[str, str]) -> dict[str, QuantEntry]:
    out: dict[str, QuantEntry] = {}
    for name, entry in table.items():
        owner, dot, suffix = name.rpartition(".")
        out[f"{by_traced[owner]}.other" if dot and suffix == "other" and owner in by_traced else name] = entry
    return out


def _rename_nodes(table: dict[str, QuantEntry], expected: list[str], by_traced: Mapping[str, str],
                  traced_names: Mapping[str, str]) -> dict[str, QuantEntry]:
    renamed: dict[str, QuantEntry] = {}
    unmatched: list[str] = []
    for name, entry in table.items():
        if name in by_traced:
            renamed[by_traced[name]] = entry
        else:
            unmatched.append(name)
    # names another tool traced: by module scope and order
    wanted: dict[str, list[str]] = {}
    for node in expected:
        if node not in renamed and node in traced_names:
            wanted.setdefault(_scope(traced_names[node]), []).append(node)
    given: dict[str, list[str]] = {}
    for name in unmatched:
        given.setdefault(_scope(name), []).append(name)
    for scope, names in given.items():
        nodes = wanted.get(scope, [])
        if len(nodes) == len(names):
            renamed.update({node: table[name] for node, name in zip(nodes, names)})
        else:
            renamed.update({name: table[name] for name in names})
    return renamed


def match_traced_names(record: QuantRecord, expected_outputs: Iterable[str],
                       traced_names: Mapping[str, str]) -> QuantInfo:
    """The record's entries under the model's node names (see the module docstring): a 3.x
    record as it is, a single-pair record with its traced names matched."""
    info = record.info
    if record.layout != LAYOUT_SINGLE_PAIR:
        return info
    by_traced = {traced: node for node, traced in traced_names.items()}
    expected = list(expected_outputs)
    note(f"=>Calibration result '{info.source}' is in the single-pair format of earlier releases: "
         "its traced names are matched to this model's nodes.")
    return QuantInfo(param=_rename_params(info.param, by_traced),
                     output=_rename_nodes(info.output, expected, by_traced, traced_names),
                     input=_rename_nodes(info.input, expected, by_traced, traced_names),
                     source=info.source)


def refuse_multi_output(record: QuantRecord, names: Iterable[str]) -> None:
    """QUANT_INFO_CORRUPT for a 3.x entry this model reads that holds more than one pair (a node
    of several outputs in the writer's graph; this flow's nodes have one)."""
    for name in names:
        if name in record.multi_output:
            raise corrupt(record.source, f'entry "{name}" holds {len(record.multi_output[name])} '
                                         "[bit_width, fix_pos] pairs; this model's node has one output.")


def check_provenance(record: QuantRecord, graph_md5: str) -> None:
    """The 3.x keys `version` and `graph_md5` against this tool and model (see the module
    docstring); nothing to check in a single-pair record."""
    if record.layout == LAYOUT_SINGLE_PAIR:
        return
    path = str(record.source)
    if record.version != TOOL_VERSION:
        warn("CALIB_VERSION_MISMATCH", path=path, recorded=record.version, current=TOOL_VERSION)
        return
    if record.graph_md5 != graph_md5:
        raise error("CALIB_GRAPH_MISMATCH", path=path, recorded=record.graph_md5, current=graph_md5)
