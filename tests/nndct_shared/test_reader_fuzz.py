"""Fuzz the two readers users feed hand-edited or damaged files to: quant_info.json and .xmodel.

Property: on any mutation of a golden file (written by the reference tool) the reader either
returns an object that is fully usable (it can be written back and read again to the same
content) or raises its catalogued error (QuantInfoError QUANT_INFO_CORRUPT, XmodelFormatError
XMODEL_INVALID) naming the file. Any other exception (IndexError, UnicodeDecodeError,
RecursionError, a bare ValueError from int(), a protobuf DecodeError, ...) is a reader bug.

Hypothesis runs derandomized with a fixed example budget and no example database, so every run
checks the same inputs and takes a few seconds.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndct_shared.messages import QuantInfoError, XmodelFormatError
from nndct_shared.quant_info import (
    MAX_BIT_WIDTH,
    MAX_FIX_POS,
    MIN_BIT_WIDTH,
    MIN_FIX_POS,
    SECTIONS,
    QuantInfo,
    read_quant_info,
    to_json_text,
)
from nndct_shared.xmodel import XGraph, read_xmodel, xgraph_from_bytes, xgraph_to_bytes
from nndct_shared.xmodel.proto_schema import messages

GOLDEN = Path(__file__).parents[1] / "data" / "golden" / "vitis-rnn-lstm-cell"
QUANT_INFO_BYTES = (GOLDEN / "quant_info.json").read_bytes()
XMODEL_PATHS = sorted((GOLDEN / "xmodel").glob("*.xmodel"))
XMODEL_BYTES = [path.read_bytes() for path in XMODEL_PATHS]

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the properties -----------------------------------------------------------------------------


def _check_quant_info_file(path: Path) -> QuantInfo | None:
    """Read `path`; assert the property; return the object when the read succeeded."""
    try:
        qi = read_quant_info(path)
    except QuantInfoError as exc:
        assert exc.msg_id is not None and exc.msg_id.endswith("_QUANT_INFO_CORRUPT"), exc
        assert str(path) in str(exc)
        return None
    for _, table in qi.sections():
        for name, (bit_width, fix_pos) in table.items():
            assert isinstance(name, str)
            assert MIN_BIT_WIDTH <= bit_width <= MAX_BIT_WIDTH
            assert fix_pos is None or MIN_FIX_POS <= fix_pos <= MAX_FIX_POS
    # Usable: written back in the reference layout and read again, it is the same table.
    again = path.with_name(path.name + ".again")
    again.write_bytes(to_json_text(qi).encode("utf-8"))
    assert read_quant_info(again) == qi
    return qi


def _check_xmodel_bytes(data: bytes) -> XGraph | None:
    try:
        xgraph = xgraph_from_bytes(data, "fuzzed.xmodel")
    except XmodelFormatError as exc:
        assert exc.msg_id is not None and exc.msg_id.endswith("_XMODEL_INVALID"), exc
        assert "'fuzzed.xmodel'" in str(exc)
        return None
    # Usable: it validates and serializes, and the bytes read back to the same ops.
    again = xgraph_from_bytes(xgraph_to_bytes(xgraph), "rewritten.xmodel")
    assert [op.name for op in again] == [op.name for op in xgraph]
    return xgraph


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "quant_info.json"


def _check_quant_info_bytes(scratch: Path, data: bytes) -> QuantInfo | None:
    scratch.write_bytes(data)
    return _check_quant_info_file(scratch)


# --- byte-level mutations (both readers) --------------------------------------------------------

_MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "varint"]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
    st.integers(min_value=0, max_value=255),
)


def _mutate(data: bytes, mutations: list[tuple[str, float, int]]) -> bytes:
    """Apply the mutations; a position is a fraction of the current length."""
    out = bytearray(data)
    for kind, where, value in mutations:
        pos = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[pos] ^= 1 << (value % 8)
        elif kind == "set" and out:
            out[pos] = value
        elif kind == "insert":
            out.insert(pos, value)
        elif kind == "delete" and out:
            del out[pos]
        elif kind == "varint":
            # A huge length or tag where a small one was: must not make the reader allocate.
            out[pos:pos] = b"\xff\xff\xff\xff\x0f" if value % 2 else b"\x80" * 9 + b"\x01"
    return bytes(out)


@FUZZ
@given(index=st.sampled_from(range(len(XMODEL_BYTES))),
       mutations=st.lists(_MUTATION, min_size=1, max_size=4))
def test_xmodel_byte_mutations(index: int, mutations: list[tuple[str, float, int]]) -> None:
    _check_xmodel_bytes(_mutate(XMODEL_BYTES[index], mutations))


@FUZZ
@given(mutations=st.lists(_MUTATION, min_size=1, max_size=4))
def test_quant_info_byte_mutations(scratch: Path, mutations: list[tuple[str, float, int]]) -> None:
    _check_quant_info_bytes(scratch, _mutate(QUANT_INFO_BYTES, mutations))


def test_xmodel_truncated_at_many_offsets() -> None:
    """Every 211th offset of both files (about 850 cuts); none of them is a complete file."""
    for data in XMODEL_BYTES:
        for cut in range(0, len(data), 211):
            assert _check_xmodel_bytes(data[:cut]) is None, cut


def test_quant_info_truncated_at_many_offsets(scratch: Path) -> None:
    """Every offset of the first and last 300 bytes, every 5th in between (about 1500 cuts)."""
    data = QUANT_INFO_BYTES
    cuts = sorted({*range(300), *range(300, len(data) - 300, 5), *range(len(data) - 300, len(data))})
    for cut in cuts:
        assert _check_quant_info_bytes(scratch, data[:cut]) is None, cut
    assert _check_quant_info_bytes(scratch, data) is not None


def test_read_xmodel_on_mutated_files(tmp_path: Path) -> None:
    """The path entry point names the file; a golden file still reads after a copy."""
    path = tmp_path / "cell.xmodel"
    path.write_bytes(XMODEL_BYTES[0][:-7])
    with pytest.raises(XmodelFormatError) as info:
        read_xmodel(path)
    assert info.value.msg_id == "QUANTIZER_TORCH_XMODEL_INVALID"
    assert f"'{path}' is not a readable xmodel" in str(info.value)
    path.write_bytes(XMODEL_BYTES[0])
    assert len(read_xmodel(path)) == 72


# --- structural mutations of quant_info.json ------------------------------------------------------

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, 2, 16, 32, 33, 126, 127, -126, -127, 2**31, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def _golden_document() -> dict[str, dict[str, Any]]:
    return json.loads(QUANT_INFO_BYTES)


def _pick(document: dict[str, Any], where: float) -> tuple[str, str] | None:
    """(section, name) of the entry at fraction `where` of all entries, None if there are none."""
    names = [(s, n) for s in SECTIONS if isinstance(document.get(s), dict) for n in document[s]]
    return names[min(int(where * len(names)), len(names) - 1)] if names else None


def _structural(draw: Callable[..., Any]) -> bytes:
    document = _golden_document()
    kind = draw(st.sampled_from([
        "entry_value", "entry_item", "section_value", "drop_key", "extra_key", "extra_entry",
        "drop_entry", "top_value", "duplicate_line", "huge_int", "nan_literal", "latin1",
        "utf16", "deep", "escaped_name",
    ]))
    where = draw(st.floats(min_value=0.0, max_value=1.0, allow_nan=False))
    picked = _pick(document, where)
    assert picked is not None
    section, name = picked
    if kind == "entry_value":
        document[section][name] = draw(_JSON_VALUES)
    elif kind == "entry_item":
        document[section][name][draw(st.integers(0, 1))] = draw(_JSON_SCALARS)
    elif kind == "section_value":
        document[draw(st.sampled_from(SECTIONS))] = draw(_JSON_VALUES)
    elif kind == "drop_key":
        del document[draw(st.sampled_from(SECTIONS))]
    elif kind == "extra_key":
        document[draw(st.text(max_size=6))] = draw(_JSON_VALUES)
    elif kind == "extra_entry":
        document[section][draw(st.text(max_size=12))] = draw(_JSON_VALUES)
    elif kind == "drop_entry":
        del document[section][name]
    elif kind == "top_value":
        return json.dumps(draw(_JSON_VALUES)).encode("utf-8")
    text = json.dumps(document, indent=1, ensure_ascii=False)
    if kind == "duplicate_line":
        # Repeat one entry line (the golden layout has one entry per line): a duplicate key.
        lines = QUANT_INFO_BYTES.decode("utf-8").split("\n")
        entry_lines = [i for i, line in enumerate(lines) if line.startswith("    ")]
        i = entry_lines[min(int(where * len(entry_lines)), len(entry_lines) - 1)]
        line = lines[i] if lines[i].endswith(",") else lines[i] + ","
        lines.insert(i, line)
        text = "\n".join(lines)
    elif kind == "huge_int":
        digits = draw(st.sampled_from([21, 400, 5000]))
        text = text.replace("[16, 12]", f"[16, {'9' * digits}]", 1)
    elif kind == "nan_literal":
        text = text.replace("[16, 12]", f"[16, {draw(st.sampled_from(['NaN', 'Infinity']))}]", 1)
    elif kind == "latin1":
        text = text.replace(f'"{name}"', f'"{name}\u00e9"', 1)
        return text.encode("latin-1")
    elif kind == "utf16":
        return text.encode("utf-16")
    elif kind == "deep":
        depth = draw(st.sampled_from([50, 5000, 100_000]))
        text = text.replace("[16, 12]", "[" * depth + "]" * depth, 1)
    elif kind == "escaped_name":
        escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\u00e9", "\\\\"]))
        text = text.replace(f'"{name}"', f'"{name}{escape}"', 1)
    return text.encode("utf-8")


@FUZZ
@given(data=st.data())
def test_quant_info_structural_mutations(scratch: Path, data: st.DataObject) -> None:
    _check_quant_info_bytes(scratch, _structural(data.draw))


# --- regression cases the fuzzing found (exact reasons) ----------------------------------------

_EMPTY = '"output": {}, "input": {}}'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"param": ' + "[" * 100_000 + "]" * 100_000 + ", " + _EMPTY,
         "its JSON is nested too deeply"),
        ('{"param": {"w": [16, ' + "9" * 5000 + "]}, " + _EMPTY,
         "it holds an integer of 5000 digits"),
        ('{"param": {"w": [16, -' + "9" * 21 + "]}, " + _EMPTY,
         "it holds an integer of 21 digits"),
        ('{"param": {"w\\ud800": [16, 12]}, ' + _EMPTY,
         "holds an escaped lone surrogate"),
        ('{"param": {"w": [33, 12]}, ' + _EMPTY,
         'entry "w" in "param" has bit_width 33; expected an integer from 2 to 32'),
        ('{"param": {"w": [1, 0]}, ' + _EMPTY, "has bit_width 1; expected an integer from 2"),
        ('{"param": {"w": [16, 127]}, ' + _EMPTY,
         "has fix_pos 127; expected an integer from -126 to 126"),
        ('{"param": {"w": [16, -127]}, ' + _EMPTY, "has fix_pos -127"),
        ('{"param": {"w": [16, NaN]}, ' + _EMPTY, "has fix_pos nan"),
    ],
    ids=["deep", "5000-digits", "21-digits", "surrogate", "bw-33", "bw-1", "fp-127", "fp--127",
         "nan"],
)
def test_quant_info_regressions(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "quant_info.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(QuantInfoError) as info:
        read_quant_info(path)
    assert info.value.msg_id == "QUANTIZER_TORCH_QUANT_INFO_CORRUPT"
    assert reason in str(info.value)


def test_quant_info_range_limits_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "quant_info.json"
    path.write_text('{"param": {"a": [2, -126], "b": [32, 126], "c": [16, null]}, ' + _EMPTY)
    qi = read_quant_info(path)
    assert qi.param == {"a": (2, -126), "b": (32, 126), "c": (16, None)}
    assert qi.output == {} and qi.input == {}


def test_xmodel_regressions() -> None:
    """A graph XIR would reject (required attr missing, subgraphs nested past protobuf's
    limit) is refused at read time, not when it is written back or used."""
    Graph = messages(ordered_maps=True).Graph
    golden = Graph.FromString(XMODEL_BYTES[0])

    missing_attr = Graph()
    missing_attr.CopyFrom(golden)
    fix_node = next(node for node in missing_attr.op_node if node.op_type == "fix")
    keep = [entry for entry in fix_node.op_attr if entry.key != "fix_point"]
    del fix_node.op_attr[:]
    fix_node.op_attr.extend(keep)
    with pytest.raises(XmodelFormatError, match="required attr 'fix_point' is missing"):
        xgraph_from_bytes(missing_attr.SerializeToString())

    deep = Graph()
    deep.CopyFrom(golden)
    names = list(deep.subg_root.op_name)
    deep.subg_root.ClearField("op_name")
    node = deep.subg_root
    for level in range(150):
        node = node.subg_child.add(subgraph_name=f"s{level}")
    node.op_name.extend(names)
    with pytest.raises(XmodelFormatError, match="protobuf decoding failed"):
        xgraph_from_bytes(deep.SerializeToString())
