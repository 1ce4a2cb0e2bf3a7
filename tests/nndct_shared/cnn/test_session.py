"""The neutral CNN session (`nndct_shared.cnn.session`) drives the whole flow from a captured
graph without any framework: plan, settings, CLE, quant_info.json written and read back strictly,
the bit-width check, target= and the xmodel (evaluated exactly against the reference)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.neutral_cnn_flow import calibrate, captured_cnn, digits_images, run_flow
from nndct_shared.cnn.session import CnnQuantSession, channel_names, load_session_config
from nndct_shared.config import default_config
from nndct_shared.messages import ExportError, MissingFileError, QuantConfigError, QuantInfoError
from nndct_shared.quant_info_v3 import TOOL_VERSION, read_record
from nndct_shared.quant_mode import RunMode

HELPER = Path(__file__).resolve().parents[2] / "helpers" / "neutral_cnn_flow.py"


def test_the_session_runs_the_flow_without_a_framework(tmp_path):
    """In a fresh interpreter: nothing imports torch or tensorflow, and the result is the one
    computed in-process."""
    done = subprocess.run([sys.executable, str(HELPER), str(tmp_path / "sub")], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["frameworks"] == []
    assert result["xmodel_matches_reference"] and result["same_weights"]
    local = run_flow(tmp_path / "here")
    assert result["fix_pos"] == {k: int(v) for k, v in local["fix_pos"].items()}
    assert (tmp_path / "sub" / "quant_info.json").read_bytes() == (tmp_path / "here" / "quant_info.json").read_bytes()
    assert (tmp_path / "sub" / "Neutral_int.xmodel").read_bytes() == (tmp_path / "here" / "Neutral_int.xmodel").read_bytes()


def test_plan_calibration_result_and_exports(tmp_path):
    result = run_flow(tmp_path)
    # nodes named as the reference 3.x names them: <Model>::nndct_<op>_<topological index>
    assert result["cle_pairs"] == [("Neutral::nndct_conv2d_1", "Neutral::nndct_conv2d_3")]  # conv-relu-conv
    assert result["params"] == ["Neutral::c1.weight", "Neutral::c1.bias", "Neutral::c2.weight",
                                "Neutral::c2.bias", "Neutral::fc.weight", "Neutral::fc.bias"]
    # convs fused into their relus, flatten shape-only: the reference's placement
    assert result["outputs"] == ["Neutral::nndct_input_0", "Neutral::nndct_relu_2", "Neutral::nndct_relu_4",
                                 "Neutral::nndct_maxpool_5", "Neutral::nndct_dense_7"]
    assert result["loaded"] == result["fix_pos"] and result["same_weights"]
    record = read_record(tmp_path / "quant_info.json")
    info = record.info
    assert list(info.param) == result["params"] and list(info.output) == result["outputs"]
    assert not info.input and all(bw == 8 for bw, _ in info.param.values())
    assert (record.layout, record.fast_finetuned, record.bias_corrected, record.version, record.graph_md5) == (
        "3.x", False, False, TOOL_VERSION, result["graph_md5"])
    text = (tmp_path / "quant_info.json").read_text()
    assert f'"Neutral::c1.weight":[[8,{result["fix_pos"]["Neutral::c1.weight"]}]]' in text
    assert text.endswith(f'"version":"{TOOL_VERSION}",\n  "graph_md5":"{result["graph_md5"]}"\n}}')
    assert result["xmodel_matches_reference"]
    assert (tmp_path / "deploy_check_data_int").is_dir()


def test_test_mode_reads_strictly_and_checks_the_bit_width(tmp_path):
    session = CnnQuantSession(captured_cnn(), load_session_config(None, 8), RunMode.TEST, tmp_path)
    with pytest.raises(MissingFileError, match="NO_CALIB_RESULT"):
        session.read_fix_positions()
    run_flow(tmp_path)
    four_bit = CnnQuantSession(captured_cnn(), load_session_config(None, 4), RunMode.TEST, tmp_path)
    with pytest.raises(QuantConfigError, match="QUANT_CONFIG_MISMATCH") as err:
        four_bit.read_fix_positions()
    assert "bit width of 'Neutral::c1.weight' (4 now, 8 at calibration)" in str(err.value)
    assert "more)" in str(err.value)                  # 11 tensors, three named
    other = captured_cnn()
    other.graph.node("Neutral::fc").params["weight"].name = "Neutral::head.weight"
    renamed = CnnQuantSession(other, load_session_config(None, 8), RunMode.TEST, tmp_path)
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH") as err:
        renamed.read_fix_positions()
    assert "'Neutral::head.weight'" in str(err.value) and "'Neutral::fc.weight'" in str(err.value)


def test_a_graph_or_version_mismatch_is_named(tmp_path, caplog):
    """Same names, another graph: CALIB_GRAPH_MISMATCH with both hashes; a file another tool
    version wrote: the CALIB_VERSION_MISMATCH warning naming both versions, and it loads."""
    result = run_flow(tmp_path)
    other = captured_cnn()
    other.graph.node("Neutral::pool").attrs["ceil_mode"] = True  # same output shape, same names
    session = CnnQuantSession(other, load_session_config(None, 8), RunMode.TEST, tmp_path)
    assert session.graph_md5 != result["graph_md5"]
    with pytest.raises(QuantInfoError, match="CALIB_GRAPH_MISMATCH") as err:
        session.read_fix_positions()
    assert result["graph_md5"] in str(err.value) and session.graph_md5 in str(err.value)
    path = tmp_path / "quant_info.json"
    path.write_text(path.read_text().replace(TOOL_VERSION, "3.5.0"))
    with caplog.at_level("WARNING"):
        loaded = CnnQuantSession(captured_cnn(), load_session_config(None, 8), RunMode.TEST,
                                 tmp_path).read_fix_positions()
    assert loaded == result["fix_pos"]
    warning = next(r.getMessage() for r in caplog.records if "CALIB_VERSION_MISMATCH" in r.getMessage())
    assert "'3.5.0'" in warning and f"'{TOOL_VERSION}'" in warning


def test_export_quant_config_needs_calib_mode(tmp_path):
    session = CnnQuantSession(captured_cnn(), load_session_config(None, 8), RunMode.TEST, tmp_path)
    with pytest.raises(ExportError, match="EXPORT_MODE"):
        session.export_quant_config({}, {})
    assert not (tmp_path / "quant_info.json").exists()


def test_per_channel_entries_and_bias_correction_layers(tmp_path):
    data = default_config(8, "CPU").to_dict()
    data["tensor_quantize_config"]["weights"] = {"per_channel": True}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    config = load_session_config(str(path), 8)
    session = CnnQuantSession(captured_cnn(), config, RunMode.CALIB, tmp_path)
    assert session.settings["Neutral::c2.weight"].axis == 0
    assert session.bias_correction_nodes() == ["Neutral::nndct_conv2d_1", "Neutral::nndct_conv2d_3",
                                               "Neutral::nndct_dense_7"]
    fix_pos = calibrate(session, digits_images(32))
    assert isinstance(fix_pos["Neutral::c2.weight"], tuple) and len(fix_pos["Neutral::c2.weight"]) == 6
    session.export_quant_config(fix_pos, {"extra.bin": b"x"})
    info = read_record(tmp_path / "quant_info.json").info
    assert [k for k in info.param if k.startswith("Neutral::c2.weight")] == channel_names("Neutral::c2.weight", 6)
    assert (tmp_path / "extra.bin").read_bytes() == b"x"
    test = CnnQuantSession(captured_cnn(), config, RunMode.TEST, tmp_path)
    assert test.read_fix_positions() == fix_pos


def test_target_plans_dpu_nodes_only(tmp_path):
    """target=: the same plan for the DPU target (every op here runs on it), bit widths 8."""
    config = load_session_config(None, 4)
    session = CnnQuantSession(captured_cnn(), config, RunMode.CALIB, tmp_path, target="DPUCZDX8G_ISA1_B4096")
    assert {s.bit_width for s in session.settings.values()} == {8}
    plain = CnnQuantSession(captured_cnn(), config, RunMode.CALIB, tmp_path)
    assert list(session.plan.params) == list(plain.plan.params)
    assert list(session.plan.outputs) == list(plain.plan.outputs)
