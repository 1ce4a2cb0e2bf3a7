"""Decoding the reference quantizer's LSTM-cell xmodels, and writing them back unchanged."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nndct_shared.graph import to_op_name
from nndct_shared.xmodel import (
    DataType,
    read_xmodel,
    write_xmodel,
    xgraph_from_bytes,
    xgraph_to_bytes,
)

EXPECTED_COUNTS = {"data": 3, "const": 12, "matmul": 8, "add": 5, "mul": 3, "sigmoid": 3,
                   "tanh": 2, "fix": 36}
GATES = "ifgo"


def _prefix(path: Path) -> str:
    return path.name.removesuffix("_int.xmodel")


@pytest.fixture(scope="module")
def quant_info(golden_lstm_dir: Path) -> dict:
    return json.loads((golden_lstm_dir / "quant_info.json").read_text())


def test_op_counts(golden_xmodels) -> None:
    for path in golden_xmodels:
        xgraph = read_xmodel(path)
        assert len(xgraph) == 72
        assert xgraph.op_type_counts() == EXPECTED_COUNTS
        assert xgraph.name == _prefix(path)


def test_op_names_follow_the_reference_naming(decoder_xmodel) -> None:
    xgraph = read_xmodel(decoder_xmodel)
    p = "DecoderRnn1_StandardLstmCell_layer_0_forward"
    assert xgraph.op(f"{p}__w_ii___input_0___bias_i").type == "matmul"
    assert xgraph.op(f"{p}__w_ii___input_0___bias_i_fix").type == "fix"
    assert to_op_name(f"{p}::w_ii * input_0 + bias_i") == f"{p}__w_ii___input_0___bias_i"
    non_fix = [op for op in xgraph if op.type != "fix"]
    for op in non_fix:  # every non-fix op is followed by exactly one fix op `<op>_fix`
        fix = xgraph.op(op.name + "_fix")
        assert fix.type == "fix" and fix.inputs == {"input": [op.name]}
        assert fix.shape == op.shape


def test_fix_attrs_match_quant_info(golden_xmodels, quant_info) -> None:
    for path in golden_xmodels:
        xgraph = read_xmodel(path)
        prefix = _prefix(path)
        entries = {**quant_info["param"], **quant_info["output"]}
        names = {to_op_name(name): fp for name, (bw, fp) in entries.items()
                 if name.startswith(prefix + "::")}
        assert len(names) == 36
        for op in xgraph.ops_of_type("fix"):
            assert dict(op.attrs) == {
                "bit_width": 16, "fix_point": names[op.inputs["input"][0]],
                "round_mode": "DPU_ROUND", "if_signed": True,
            }
            assert op.attrs["if_signed"] is True
            assert op.attrs.kind("fix_point") == "int32"
            assert op.attrs.kind("bit_width") == "int32"
            assert op.attrs.kind("if_signed") == "bool"
        fps = {op.inputs["input"][0].removeprefix(prefix + "__"): op.fix[1]
               for op in xgraph.ops_of_type("fix")}
        assert {fps[n] for n in ("it", "ft", "cct", "ot", "c_temp")} == {15}
        assert {fp for n, fp in fps.items() if n not in ("it", "ft", "cct", "ot", "c_temp")} == {12}


def test_matmul_args_and_attrs(decoder_xmodel) -> None:
    xgraph = read_xmodel(decoder_xmodel)
    p = xgraph.name
    for gate in GATES:
        with_bias = xgraph.op(f"{p}__w_i{gate}___input_0___bias_{gate}")
        assert with_bias.inputs == {
            "input": [f"{p}__input_0_fix", f"{p}__weight_i{gate}_fix"],
            "bias": [f"{p}__bias_{gate}_fix"],
        }
        no_bias = xgraph.op(f"{p}__w_h{gate}___input_1")
        assert no_bias.args == {"input": [f"{p}__input_1_fix", f"{p}__weight_h{gate}_fix"],
                                "bias": []}
        for op in (with_bias, no_bias):
            assert op.attrs == {"transpose_a": False, "transpose_b": True}
            assert op.shape == [1, 32]


def test_data_ops_and_output_tensors(decoder_xmodel) -> None:
    xgraph = read_xmodel(decoder_xmodel)
    p = xgraph.name
    shapes = {"input_0": [1, 16], "input_1": [1, 32], "input_2": [1, 32]}
    for local, shape in shapes.items():
        op = xgraph.op(f"{p}__{local}")
        assert op.type == "data" and op.inputs == {}
        assert op.attrs == {"shape": shape, "data_type": "FLOAT32"}
        assert op.attrs.kind("shape") == "int32_vec"
    for op in xgraph:
        assert op.output.name == op.name
        assert op.output.data_type == DataType.FLOAT and op.output.bit_width == 32


def test_cell_sizes(golden_xmodels) -> None:
    """Decoder cell: LSTM(16, 32); Encoder cell: LSTM(1, 16) (x is [1, in], h and c [1, H])."""
    sizes = {}
    for path in golden_xmodels:
        xgraph = read_xmodel(path)
        p = xgraph.name
        sizes[p.split("_")[0]] = [xgraph.op(f"{p}__input_{i}").shape for i in range(3)]
    assert sizes == {"DecoderRnn1": [[1, 16], [1, 32], [1, 32]],
                     "EncoderRnn1": [[1, 1], [1, 16], [1, 16]]}


def test_const_data_is_float32_on_the_fix_grid(golden_xmodels) -> None:
    for path in golden_xmodels:
        xgraph = read_xmodel(path)
        p = xgraph.name
        in_size = xgraph.op(f"{p}__input_0").shape[1]
        hidden = xgraph.op(f"{p}__input_1").shape[1]
        consts = xgraph.ops_of_type("const")
        assert len(consts) == 12
        for op in consts:
            assert op.attrs["data_type"] == "float32"
            assert op.attrs.kind("data") == "bytes"
            assert len(op.attrs["data"]) == 4 * int(np.prod(op.shape))
            local = op.name.removeprefix(p + "__")
            expected_shape = [hidden] if local.startswith("bias") else (
                [hidden, in_size] if local.startswith("weight_i") else [hidden, hidden])
            array = op.const_array()
            assert array.dtype == np.float32 and list(array.shape) == expected_shape
            assert op.shape == expected_shape
            fix_point = xgraph.op(op.name + "_fix").fix[1]
            codes = array.astype(np.float64) * 2.0**fix_point
            assert np.array_equal(codes, np.round(codes)), f"{op.name} is off the fix grid"
            assert codes.min() >= -(2**15) and codes.max() <= 2**15 - 1
            assert np.count_nonzero(array) > 0


def test_graph_attrs_and_subgraph(golden_xmodels) -> None:
    for path in golden_xmodels:
        xgraph = read_xmodel(path)
        p = xgraph.name
        assert dict(xgraph.attrs) == {
            "direction": "forward",
            "return_ops": [f"{p}__h_next_fix", f"{p}__c_next_fix"],
        }
        assert xgraph.attrs.kind("return_ops") == "string_vec"
        assert xgraph.return_ops == [f"{p}__h_next_fix", f"{p}__c_next_fix"]
        assert xgraph.subgraph.name == "root" and not xgraph.subgraph.children
        assert xgraph.subgraph.ops == [op.name for op in xgraph]
        assert len(xgraph.op_defs) == 78


def test_file_order_is_topological(decoder_xmodel) -> None:
    xgraph = read_xmodel(decoder_xmodel)
    assert [op.name for op in xgraph.topological_order()] == [op.name for op in xgraph]


def test_read_then_write_is_byte_identical(golden_xmodels, tmp_path: Path) -> None:
    for path in golden_xmodels:
        out = write_xmodel(read_xmodel(path), tmp_path / path.name)
        assert out.read_bytes() == path.read_bytes()


def test_write_read_write_is_byte_identical(golden_xmodels) -> None:
    for path in golden_xmodels:
        first = xgraph_to_bytes(read_xmodel(path))
        second = xgraph_to_bytes(xgraph_from_bytes(first))
        assert first == second


def test_edited_golden_graph_still_writes(decoder_xmodel, tmp_path: Path) -> None:
    """Changing a fix point and adding an op keeps the file valid; the root leaf is rebuilt."""
    xgraph = read_xmodel(decoder_xmodel)
    p = xgraph.name
    xgraph.op(f"{p}__h_next_fix").attrs["fix_point"] = 11
    xgraph.add_op(f"{p}__h_relu", "relu", inputs={"input": [f"{p}__h_next_fix"]})
    again = read_xmodel(write_xmodel(xgraph, tmp_path / "edited.xmodel"))
    assert again.op(f"{p}__h_next_fix").attrs["fix_point"] == 11
    assert again.op(f"{p}__h_relu").shape == [1, 32]
    assert again.subgraph.ops == [op.name for op in again]
    assert len(again.op_defs) == 78  # relu was already among the file's defs
