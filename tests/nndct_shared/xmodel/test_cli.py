"""`python -m nndct_shared.xmodel FILE [--svg OUT]` on the reference files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nndct_shared
from nndct_shared.xmodel import read_xmodel

COMMON = str(Path(nndct_shared.__file__).resolve().parents[1])


def _run(*args: str, path_env: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([COMMON, env.get("PYTHONPATH", "")])
    if path_env is not None:
        env["PATH"] = path_env
    return subprocess.run([sys.executable, "-m", "nndct_shared.xmodel", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_listing(decoder_xmodel: Path) -> None:
    result = _run(str(decoder_xmodel))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    xgraph = read_xmodel(decoder_xmodel)
    p = xgraph.name
    assert lines[0].startswith(f"graph {p}: 72 ops")
    op_lines = lines[1:73]
    assert [line.split("  ")[0] for line in op_lines] == [op.name for op in xgraph]
    fix_line = next(l for l in op_lines if l.startswith(f"{p}__ot_fix  "))
    assert fix_line == (f"{p}__ot_fix  fix  inputs={{input: [{p}__ot]}}  shape=[1, 32]  "
                        "fix=(bit_width=16, fix_point=15, round_mode='DPU_ROUND', if_signed=True)")
    matmul_line = next(l for l in op_lines if l.startswith(f"{p}__w_ii___input_0___bias_i  "))
    assert f"bias: [{p}__bias_i_fix]" in matmul_line and "shape=[1, 32]" in matmul_line
    assert lines[73] == "graph attrs:"
    assert lines[74] == "  direction (string) = 'forward'"
    assert lines[75] == f"  return_ops (string_vec) = ['{p}__h_next_fix', '{p}__c_next_fix']"


def test_attrs_flag_lists_other_attrs(decoder_xmodel: Path) -> None:
    result = _run(str(decoder_xmodel), "--attrs")
    assert result.returncode == 0, result.stderr
    assert "attrs={transpose_a: False, transpose_b: True}" in result.stdout
    assert "data: <4096 bytes>" in result.stdout  # a [32, 32] float32 const


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_svg(decoder_xmodel: Path, tmp_path: Path) -> None:
    out = tmp_path / "cell.svg"
    result = _run(str(decoder_xmodel), "--svg", str(out))
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert svg.count('class="node"') == 72
    assert svg.count('class="edge"') == sum(len(op.input_ops) for op in read_xmodel(decoder_xmodel))
    assert "w_ii___input_0___bias_i" in svg and "bw=16 fp=15" in svg


def test_svg_without_dot_says_to_install_graphviz(decoder_xmodel: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    result = _run(str(decoder_xmodel), "--svg", str(tmp_path / "x.svg"), path_env=str(empty))
    assert result.returncode == 3
    assert "install Graphviz" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.svg").exists()


def test_not_an_xmodel(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.xmodel"
    bogus.write_bytes(b"\x0a\x05abc")
    result = _run(str(bogus))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "not a complete XIR xmodel" in result.stderr
