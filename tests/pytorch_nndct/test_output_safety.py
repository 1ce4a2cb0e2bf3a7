"""Where torch_quantizer(lstm=True) writes, and what it leaves behind when it cannot.

An unusable output_dir must fail with the catalogued OUTPUT_DIR error at the first write and
leave nothing behind; an export that fails midway must leave the previous export byte for
byte; no module name can put a file outside output_dir. Also the remaining error cases of the
LSTM flow that tests/pytorch_nndct/test_lstm_exports.py does not cover.
"""
from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared import atomic_io
from nndct_shared.deploy_check import MAX_STEM_LENGTH, dump_file_stem
from nndct_shared.graph.naming import to_file_name
from nndct_shared.messages import NndctError, OutputDirError
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from helpers.fault_injection import fail_on_call

CPU = torch.device("cpu")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


class Holder(nn.Module):
    """One LSTM(2, 4) under the attribute `name` (any name nn.Module accepts)."""

    def __init__(self, name: str = "rnn", seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.name = name
        self.add_module(name, nn.LSTM(2, 4, batch_first=True))

    def forward(self, x):
        return getattr(self, self.name)(x)[0]


def _x(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(seed))


def _quantizer(mode: str, model: nn.Module, out: Path, **kwargs):
    return torch_quantizer(mode, model, bitwidth=16, lstm=True, output_dir=str(out), device=CPU,
                           **kwargs)


def _calib_and_test(model: nn.Module, out: Path, x: torch.Tensor):
    calib = _quantizer("calib", model, out)
    calib.quant_model(x)
    calib.export_quant_config()
    test = _quantizer("test", model, out)
    test.quant_model(x)
    return test


def _raises(msg_id: str, exc_type: type, fn, *args, **kwargs) -> NndctError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, NndctError), info.value
    assert info.value.msg_id == f"QUANTIZER_TORCH_{msg_id}", info.value
    assert f"[QUANTIZER_TORCH_{msg_id}]" in str(info.value)
    return info.value


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root (relative) -> file bytes (None for a directory)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


# --- an unusable output_dir -----------------------------------------------------------------------


def test_output_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "result"
    blocker.write_text("not a directory")
    err = _raises("OUTPUT_DIR", OSError, _quantizer, "calib", Holder(), blocker)
    assert isinstance(err, OutputDirError)
    assert f"output_dir '{blocker}' cannot be used" in str(err)
    assert _tree(tmp_path) == {"result": b"not a directory"}


def test_output_dir_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    _raises("OUTPUT_DIR", OSError, _quantizer, "calib", Holder(), tmp_path / "file" / "out")
    assert _tree(tmp_path) == {"file": b"x"}


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_output_dir_inside_a_read_only_directory(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        err = _raises("OUTPUT_DIR", OSError, _quantizer, "calib", Holder(), parent / "out")
        assert "Permission denied" in str(err)
        assert list(parent.iterdir()) == []
    finally:
        parent.chmod(0o755)


@pytest.mark.skipif(IS_ROOT, reason="root ignores file permissions")
def test_read_only_output_dir(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        err = _raises("OUTPUT_DIR", OSError, _quantizer, "calib", Holder(), out)
        assert "not writable" in str(err)
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_export_dir_that_is_a_file(tmp_path: Path) -> None:
    test = _calib_and_test(Holder(), tmp_path / "q", _x())
    target = tmp_path / "export"
    target.write_text("in the way")
    err = _raises("OUTPUT_DIR", OSError, test.export_xmodel, str(target), deploy_check=True)
    assert f"output_dir '{target}'" in str(err)
    assert target.read_text() == "in the way"


def test_export_with_a_directory_in_the_way_writes_nothing(tmp_path: Path) -> None:
    """A fresh export whose xmodel target is a directory fails before any file is written."""
    test = _calib_and_test(Holder(), tmp_path / "q", _x())
    export = tmp_path / "export"
    blocker = export / "xmodel" / "Rnn_StandardLstmCell_layer_0_forward_int.xmodel"
    blocker.mkdir(parents=True)
    err = _raises("OUTPUT_DIR", OSError, test.export_xmodel, str(export), deploy_check=True)
    assert "a directory of that name is in the way" in str(err)
    assert _tree(export) == {"xmodel": None, "xmodel/Rnn_StandardLstmCell_layer_0_forward_int.xmodel": None}


def test_calib_with_the_cell_module_path_blocked(tmp_path: Path) -> None:
    """`<graph>.py` is the first file the flow writes; a directory there is an OUTPUT_DIR error."""
    (tmp_path / "Rnn_StandardLstmCell_layer_0_forward.py").mkdir()
    _raises("OUTPUT_DIR", OSError, _quantizer, "calib", Holder(), tmp_path)
    assert _tree(tmp_path) == {"Rnn_StandardLstmCell_layer_0_forward.py": None}


# --- a failed export keeps the previous one -------------------------------------------------------


class _Bilstm(nn.Module):
    """Two cells (forward and backward), so an export has two xmodels and two dump graphs."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.LSTM(2, 4, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0]


@pytest.fixture
def two_exports(tmp_path: Path):
    """An export of model A in `export`, and a test-mode quantizer of model B (other weights)."""
    export = tmp_path / "export"
    first = _calib_and_test(_Bilstm(0), tmp_path / "qa", _x(0))
    first.export_xmodel(str(export), deploy_check=True)
    second = _calib_and_test(_Bilstm(1), tmp_path / "qb", _x(1))
    return export, _tree(export), second


def test_failure_while_staging_keeps_the_previous_export(two_exports, monkeypatch) -> None:
    export, before, second = two_exports
    calls = fail_on_call(monkeypatch, atomic_io.os, "fsync", 2)  # the 2nd xmodel file
    err = _raises("OUTPUT_DIR", OSError, second.export_xmodel, str(export), deploy_check=True)
    assert "No space left on device" in str(err) and len(calls) == 2
    assert _tree(export) == before  # same files, same bytes, no temporaries


@pytest.mark.parametrize("failing_rename", [2, 3, 7])
def test_failure_while_swapping_in_restores_the_previous_export(two_exports, monkeypatch,
                                                                 failing_rename: int) -> None:
    """Renames fail after the first xmodel, after both, and among the dump frames."""
    export, before, second = two_exports
    fail_on_call(monkeypatch, atomic_io.os, "replace" if failing_rename <= 2 else "rename",
                  failing_rename if failing_rename <= 2 else failing_rename - 2)
    _raises("OUTPUT_DIR", OSError, second.export_xmodel, str(export), deploy_check=True)
    assert _tree(export) == before


def test_the_second_export_differs_when_it_succeeds(two_exports) -> None:
    """Guards the two tests above: model B's files really differ from model A's."""
    export, before, second = two_exports
    second.export_xmodel(str(export), deploy_check=True)
    after = _tree(export)
    assert after.keys() == before.keys()
    changed = [name for name in after if after[name] != before[name]]
    assert any(name.endswith("_int.xmodel") for name in changed)
    assert any(name.endswith("h_next_fix.txt") for name in changed)


# --- names never leave output_dir -----------------------------------------------------------------


def test_file_name_helpers_drop_separators() -> None:
    for name in ("../../etc/passwd", "/abs/path", "a\\b", "..", "x::y/z"):
        for helper in (dump_file_stem, to_file_name):
            stem = helper(name)
            assert "/" not in stem and "\\" not in stem and "." not in stem, (helper, stem)
    assert dump_file_stem("../../etc/passwd") == to_file_name("../../etc/passwd") == "______etc_passwd"


def test_long_names_get_bounded_distinct_stable_stems() -> None:
    base = "M" * 300
    a, b = dump_file_stem(base + "::it"), dump_file_stem(base + "::ft")
    assert len(a) == len(b) == MAX_STEM_LENGTH
    assert a != b and a[:183] == b[:183] == "M" * 183
    assert a == dump_file_stem(base + "::it")
    assert dump_file_stem("M" * MAX_STEM_LENGTH) == "M" * MAX_STEM_LENGTH  # at the limit: unchanged


@pytest.mark.parametrize("name", ["/escape/abs", "a/../../up", "x" * 300],
                         ids=["absolute", "dotdot", "long"])
def test_module_names_cannot_put_files_outside_output_dir(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    name = name.replace("/escape", str(tmp_path / "escape")).replace("..", "__")  # nn.Module refuses "."
    model = Holder(name)
    test = _calib_and_test(model, out, _x())
    written = test.export_xmodel(str(out), deploy_check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    for path in [*written, *out.rglob("*")]:
        assert path.resolve().is_relative_to(out.resolve())
        assert len(path.name.encode()) <= 255
    (xmodel,) = (out / "xmodel").iterdir()
    assert len(read_xmodel(xmodel)) == 72


# --- the other error cases of issue 8 -------------------------------------------------------------


@pytest.mark.parametrize("bitwidth", [1, 17, 0, -16, True, 16.0, "16"])
def test_bad_bit_widths(tmp_path: Path, bitwidth) -> None:
    _raises("ILLEGAL_BITWIDTH", ValueError, torch_quantizer, "calib", Holder(), bitwidth=bitwidth,
            lstm=True, output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["train", "", None, 3, "CALIB"])
def test_unknown_quant_mode_writes_nothing(tmp_path: Path, mode) -> None:
    _raises("QUANT_MODE", ValueError, torch_quantizer, mode, Holder(), lstm=True,
            output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", [nn.LSTM, {"weight": 1}, None], ids=["class", "dict", "none"])
def test_non_module_writes_nothing(tmp_path: Path, module) -> None:
    _raises("MODULE_TYPE", TypeError, torch_quantizer, "calib", module, lstm=True,
            output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


def test_no_lstm_and_missing_state_dict_write_nothing(tmp_path: Path) -> None:
    _raises("NO_LSTM", RuntimeError, torch_quantizer, "calib", nn.Sequential(nn.Linear(2, 2)),
            lstm=True, output_dir=str(tmp_path / "out"), device=CPU)
    _raises("STATE_DICT_MISSING", FileNotFoundError, torch_quantizer, "calib", Holder(),
            state_dict_file=str(tmp_path / "none.pth"), lstm=True,
            output_dir=str(tmp_path / "out"), device=CPU)
    assert list(tmp_path.iterdir()) == []


def test_state_dict_file_is_loaded(tmp_path: Path) -> None:
    trained = Holder(seed=5)
    torch.save(trained.state_dict(), tmp_path / "w.pth")
    q = _quantizer("calib", Holder(seed=0), tmp_path / "out", state_dict_file=str(tmp_path / "w.pth"))
    (cell,) = q.session.cells
    assert np.array_equal(cell.weights.w_ih, trained.rnn.weight_ih_l0.detach().numpy())


def test_test_mode_without_calibration_writes_no_results(tmp_path: Path) -> None:
    _raises("NO_CALIB_RESULT", FileNotFoundError, _quantizer, "test", Holder(), tmp_path)
    assert not (tmp_path / "quant_info.json").exists()
    assert not (tmp_path / "xmodel").exists()


@pytest.mark.parametrize(
    ("text", "msg_id"),
    [
        (b"", "QUANT_INFO_CORRUPT"),
        (b"\xff\xfe{}", "QUANT_INFO_CORRUPT"),
        (b'{"param": {}, "output": {}}', "QUANT_INFO_CORRUPT"),
        (b'{"param": {}, "output": {}, "input": {}}', "CALIB_RESULT_MISMATCH"),
    ],
    ids=["empty", "not-utf8", "missing-key", "foreign"],
)
def test_test_mode_with_a_bad_quant_info_leaves_it_alone(tmp_path: Path, text: bytes,
                                                         msg_id: str) -> None:
    _calib_and_test(Holder(), tmp_path, _x())
    (tmp_path / "quant_info.json").write_bytes(text)
    before = _tree(tmp_path)
    err = _raises(msg_id, ValueError, _quantizer, "test", Holder(), tmp_path)
    assert str(err).count("[VAIQ_ERROR]") == 1 and str(err).count("Fix:") == 1
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("mode", ["calib", "test"])
def test_non_finite_data(tmp_path: Path, value: float, mode: str) -> None:
    q = _calib_and_test(Holder(), tmp_path, _x()) if mode == "test" else _quantizer("calib", Holder(), tmp_path)
    x = _x()
    x[1, 2, 0] = value
    err = _raises("CALIB_DATA_NONFINITE", ValueError, q.quant_model, x)
    assert "input of LSTM 'rnn'" in str(err)


def test_shape_change_between_calib_and_test(tmp_path: Path) -> None:
    """Sequence length and batch may change (an LSTM takes any); the feature size may not."""
    test = _calib_and_test(Holder(), tmp_path, _x())
    assert test.quant_model(torch.randn(5, 7, 2)).shape == (5, 7, 4)
    err = _raises("SHAPE_MISMATCH", ValueError, test.quant_model, torch.randn(2, 3, 3))
    assert "the input features of LSTM 'rnn'" in str(err)


def test_export_before_forward_or_in_the_wrong_mode_writes_nothing(tmp_path: Path) -> None:
    calib = _quantizer("calib", Holder(), tmp_path / "q")
    _raises("EXPORT_MODE", RuntimeError, calib.export_xmodel, str(tmp_path / "x"), deploy_check=True)
    calib.quant_model(_x())
    calib.export_quant_config()
    test = _quantizer("test", Holder(), tmp_path / "q")
    _raises("NO_FORWARD", RuntimeError, test.export_xmodel, str(tmp_path / "x"), deploy_check=True)
    assert not (tmp_path / "x").exists()


def test_xmodel_export_after_a_batch_larger_than_one(tmp_path: Path) -> None:
    """The xmodel describes one sample (data ops of batch 1) and the dumps replay element 0,
    as the reference does; a larger batch is not an error in the LSTM flow."""
    test = _calib_and_test(Holder(), tmp_path, _x())
    test.quant_model(torch.randn(4, 3, 2))
    (path,) = test.export_xmodel(str(tmp_path / "x"), deploy_check=False)
    xgraph = read_xmodel(path)
    assert {op.shape[0] for op in xgraph if op.type == "data"} == {1}


def test_quant_config_file_is_ignored_with_a_warning_in_lstm_mode(tmp_path: Path, caplog) -> None:
    """The LSTM flow (like the reference RNN quantizer) has no quantization config: a config
    file, even a missing one, is reported as ignored instead of being read."""
    with caplog.at_level(logging.WARNING, logger="nndct"):
        q = _quantizer("calib", Holder(), tmp_path / "out",
                       quant_config_file=str(tmp_path / "missing.json"))
    assert "[QUANTIZER_TORCH_LSTM_ARG_IGNORED]" in caplog.text
    assert "'quant_config_file' is ignored when lstm=True" in caplog.text
    assert q.session.bit_width == 16


# --- progress bars in the LSTM flow ---------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_export_shows_transient_progress_bars_on_a_terminal(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("tqdm")
    test = _calib_and_test(Holder(), tmp_path, _x())
    monkeypatch.delenv("NNDCT_NO_PROGRESS", raising=False)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    test.export_xmodel(str(tmp_path), deploy_check=True)
    text = terminal.getvalue()
    assert "export xmodel" in text and "cell" in text
    assert "dump Rnn_StandardLstmCell_layer_0_forward" in text and "frame" in text
    monkeypatch.setenv("NNDCT_NO_PROGRESS", "1")
    terminal.seek(0)
    terminal.truncate()
    test.export_xmodel(str(tmp_path), deploy_check=True)
    assert terminal.getvalue() == ""


@pytest.mark.parametrize("which", ["h0", "c0"])
def test_non_finite_initial_states(tmp_path: Path, which: str) -> None:
    """NaN in (h0, c0) would poison the calibration statistics as NaN in x does."""
    calib = _quantizer("calib", Holder(), tmp_path)
    states = {"h0": torch.zeros(1, 2, 4), "c0": torch.zeros(1, 2, 4)}
    states[which][0, 1, 3] = float("nan")
    err = _raises("CALIB_DATA_NONFINITE", ValueError, calib.quant_model.rnn, _x(),
                  (states["h0"], states["c0"]))
    assert f"initial state {which} of LSTM 'rnn'" in str(err)
