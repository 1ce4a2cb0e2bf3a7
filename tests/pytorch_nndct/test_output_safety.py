"""Where torch_quantizer(lstm=True) writes, and what it leaves behind when it cannot.

An unusable output_dir must fail with the catalogued OUTPUT_DIR error at the first write and
leave nothing behind; an export that fails midway must leave the previous export byte for
byte; no module name can put a file outside output_dir. Also the remaining error cases of the
LSTM flow that tests/pytorch_nndct/test_lstm_exports.py does not cover. (Kills during an
export: tests/nndct_shared/test_export_kills.py.)
"""
from __future__ import annotations

import ast
import io
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared import atomic_io, export_commit
from nndct_shared.deploy_check import MAX_STEM_LENGTH, dump_file_stem
from nndct_shared.graph.naming import to_file_name
from nndct_shared.messages import NndctError, OutputDirError
from nndct_shared.output_dir import staged_export
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from helpers.fault_injection import fail_on_call
from helpers.output_tree import raw_tree, visible_tree

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


def _tree(root: Path) -> dict[str, bytes | str | None]:
    """Every path under root (relative) -> file bytes, link target or None for a directory,
    the versioned store included: equal trees mean nothing at all changed."""
    return raw_tree(root)


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


@pytest.mark.parametrize(("name", "n"), [("rename", 1), ("rename", 2), ("symlink", 1), ("symlink", 3),
                                         ("replace", 1)],
                         ids=["staged-dumps-to-object", "staged-xmodels-to-object", "version-entry",
                              "new-current-link", "the-switch"])
def test_failure_while_committing_restores_the_previous_export(two_exports, monkeypatch, name: str,
                                                               n: int) -> None:
    """Each file-system call of the commit fails once (the switch included): the previous export
    stays, byte for byte, and nothing of the new one is left in the store."""
    export, before, second = two_exports
    calls = fail_on_call(monkeypatch, export_commit.os, name, n)
    _raises("OUTPUT_DIR", OSError, second.export_xmodel, str(export), deploy_check=True)
    assert len(calls) >= n
    assert _tree(export) == before


def test_failure_while_carrying_the_other_files_keeps_them(two_exports, monkeypatch) -> None:
    """`xmodel/` also holds another model's xmodel, which the export carries into its new
    `xmodel/` (a hard link): that failing leaves the directory as it was."""
    export, _, second = two_exports
    with staged_export(export) as unit:
        unit.write_bytes(export / "xmodel" / "Other_int.xmodel", b"another model")
    before = _tree(export)
    calls = fail_on_call(monkeypatch, export_commit.os, "link", 1)
    _raises("OUTPUT_DIR", OSError, second.export_xmodel, str(export), deploy_check=True)
    assert len(calls) == 1 and _tree(export) == before
    monkeypatch.undo()
    second.export_xmodel(str(export), deploy_check=True)
    assert (export / "xmodel" / "Other_int.xmodel").read_bytes() == b"another model"


def test_cleanup_failure_after_the_switch_is_no_error(two_exports, monkeypatch, caplog) -> None:
    """Removing a replaced version fails: the new export is in place, so the call succeeds with
    an OUTPUT_CLEANUP warning (issue 13, item 6), and a later export removes what stayed."""
    export, _, second = two_exports
    reference = export.parent / "reference"
    second.export_xmodel(str(reference), deploy_check=True)
    second.export_xmodel(str(export), deploy_check=True)  # keeps the first as "previous"
    versions = export / export_commit.STORE_DIR / export_commit.VERSIONS
    assert len(list(versions.iterdir())) == 2
    calls = fail_on_call(monkeypatch, export_commit.shutil, "rmtree", 1)
    with caplog.at_level(logging.WARNING, logger="nndct"):
        second.export_xmodel(str(export), deploy_check=True)
    assert calls and "[QUANTIZER_TORCH_OUTPUT_CLEANUP]" in caplog.text
    assert visible_tree(export) == visible_tree(reference)
    assert len(list(versions.iterdir())) == 3  # current, previous, and the one that stayed
    monkeypatch.undo()
    second.export_xmodel(str(export), deploy_check=True)
    assert len(list(versions.iterdir())) == 2 and visible_tree(export) == visible_tree(reference)


def test_the_second_export_differs_when_it_succeeds(two_exports) -> None:
    """Guards the two tests above: model B's files really differ from model A's."""
    export, _, second = two_exports
    before = visible_tree(export)
    second.export_xmodel(str(export), deploy_check=True)
    after = visible_tree(export)
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
    """NaN/inf is refused in both modes; in test mode it is no calibration error."""
    q = _calib_and_test(Holder(), tmp_path, _x()) if mode == "test" else _quantizer("calib", Holder(), tmp_path)
    x = _x()
    x[1, 2, 0] = value
    err = _raises("CALIB_DATA_NONFINITE" if mode == "calib" else "TEST_DATA_NONFINITE", ValueError,
                  q.quant_model, x)
    assert ("during calibration" in str(err)) == (mode == "calib")
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


def test_a_missing_quant_config_file_is_a_catalogued_error_in_lstm_mode(tmp_path: Path) -> None:
    """The LSTM flow reads quant_config_file (per-tensor bit widths, README "Mixed bit widths in
    the recurrent flow"): a missing file is named in a catalogued error before anything is written."""
    with pytest.raises(NndctError) as info:
        _quantizer("calib", Holder(), tmp_path / "out", quant_config_file=str(tmp_path / "missing.json"))
    assert info.value.msg_id == "QUANTIZER_TORCH_RECURRENT_CONFIG_INVALID"
    assert "missing.json" in str(info.value)
    assert not (tmp_path / "out").exists()


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


# --- issue 13: names that are code, bit widths, shared modules, arguments -------------------------


def _marker_code(marker: Path) -> str:
    """A statement that creates `marker` (no '.': nn.Module refuses it in names)."""
    assert "." not in str(marker)
    return f"open({str(marker)!r}, 'w')"


@pytest.mark.parametrize("breakout", ["\n", "\r", '"""\n'], ids=["newline", "carriage-return", "docstring-end"])
def test_a_module_name_cannot_put_code_into_the_cell_modules(tmp_path: Path, breakout: str) -> None:
    """The cell modules show graph names (from module paths) in a docstring and comments: a name
    holding a line break (or the end of the docstring) and a statement stays text."""
    marker = tmp_path / "ran"
    name = f"rnn{breakout}{_marker_code(marker)}{breakout}x = 1"
    out = tmp_path / "out"
    _quantizer("calib", Holder(name), out)
    (module,) = [p for p in out.iterdir() if p.suffix == ".py"]
    source = module.read_text(encoding="ascii")
    tree = ast.parse(source)
    assert [type(node).__name__ for node in tree.body] == ["Expr", "Import", "FunctionDef", "ClassDef"]
    namespace: dict = {}
    exec(compile(source, str(module), "exec"), namespace)  # importing it runs no user text
    assert not marker.exists()
    assert "open(\\x27" in source  # the name is there, escaped


def test_test_mode_at_another_bit_width_than_calibration(tmp_path: Path) -> None:
    """Issue 13, item 7: calibrated at 16 bits, tested at 8 (and the reverse): the catalogued
    error at construction, and nothing written."""
    for calib_bits, test_bits in ((16, 8), (8, 16)):
        out = tmp_path / f"c{calib_bits}"
        calib = torch_quantizer("calib", Holder(), bitwidth=calib_bits, lstm=True, output_dir=str(out), device=CPU)
        calib.quant_model(_x())
        calib.export_quant_config()
        before = _tree(out)
        err = _raises("CALIB_BITWIDTH_MISMATCH", ValueError, torch_quantizer, "test", Holder(),
                      bitwidth=test_bits, lstm=True, output_dir=str(out), device=CPU)
        assert f"bitwidth={test_bits}" in str(err) and f"{calib_bits}-bit fix positions" in str(err)
        assert "Rnn_StandardLstmCell_layer_0_forward" in str(err)
        assert _tree(out) == before


def _edit_bit_widths(path: Path, bits: int) -> None:
    text = path.read_text()
    path.write_text(re.sub(r":\[16,", f":[{bits},", text))


@pytest.mark.parametrize(("bits", "test_bits", "msg_id"), [
    (32, 16, "CALIB_BITWIDTH_MISMATCH"),
    (8, 16, "CALIB_BITWIDTH_MISMATCH"),
    (8, 8, "QUANT_INFO_CORRUPT"),  # 16-bit fix positions: sigmoid/tanh at 15 do not fit 8 bits
])
def test_hand_edited_bit_widths_are_refused_at_load(tmp_path: Path, bits: int, test_bits: int, msg_id: str) -> None:
    """A quant_info.json edited to 32 or 8 bits: a catalogued error when test mode starts, not a
    raw ValueError at the first forward or a DeployCheckError at export."""
    _calib_and_test(Holder(), tmp_path, _x())
    _edit_bit_widths(tmp_path / "quant_info.json", bits)
    err = _raises(msg_id, ValueError, _quantizer_bits, "test", Holder(), tmp_path, test_bits)
    if msg_id == "QUANT_INFO_CORRUPT":
        assert "fix position above 7" in str(err)


def _quantizer_bits(mode: str, model: nn.Module, out: Path, bits: int):
    return torch_quantizer(mode, model, bitwidth=bits, lstm=True, output_dir=str(out), device=CPU)


class _SharedLstm(nn.Module):
    """One nn.LSTM registered under two attribute names and called through both."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.LSTM(2, 4, batch_first=True)
        self.decoder = self.encoder

    def forward(self, x):
        y, _ = self.encoder(x)
        return self.decoder(y[..., :2])[0]


def test_one_lstm_under_two_names_is_quantized_once_and_shared(tmp_path: Path, caplog) -> None:
    """Issue 13, item 8: both names get the same quantized LSTM (no float leftover), with the
    LSTM_SHARED warning; one cell graph in quant_info.json, calibrated by both calls."""
    with caplog.at_level(logging.WARNING, logger="nndct"):
        calib = _quantizer("calib", _SharedLstm(), tmp_path)
    assert "[QUANTIZER_TORCH_LSTM_SHARED]" in caplog.text and "'encoder', 'decoder'" in caplog.text
    model = calib.quant_model
    assert model.encoder is model.decoder and type(model.decoder).__name__ == "QuantLSTM"
    model(_x())
    assert model.encoder.cells[0].calibration.calls == 2 * 3  # two calls of three steps
    calib.export_quant_config()
    test = _quantizer("test", _SharedLstm(), tmp_path)
    y = test.quant_model(_x())
    q = test.quant_model.encoder
    first, _ = q(_x())
    assert torch.equal(y, q(first[..., :2])[0])
    (xmodel,) = test.export_xmodel(str(tmp_path / "x"))
    assert xmodel.name == "Encoder_StandardLstmCell_layer_0_forward_int.xmodel"


@pytest.mark.parametrize(("value", "reason"), [
    (None, "NoneType"), (b"out", "bytes path"), (7, "a int"), ("out\0x", "NUL character"),
])
def test_output_dir_that_is_not_a_path(tmp_path: Path, monkeypatch, value, reason) -> None:
    """Issue 13, item 9: None, bytes, a number or a NUL in output_dir: OUTPUT_DIR, nothing written
    (also for the export's own output_dir argument)."""
    monkeypatch.chdir(tmp_path)
    err = _raises("OUTPUT_DIR", OSError, torch_quantizer, "calib", Holder(), lstm=True, output_dir=value,
                  device=CPU)
    assert reason in str(err)
    test = _calib_and_test(Holder(), tmp_path / "q", _x())
    before = _tree(tmp_path)
    assert reason in str(_raises("OUTPUT_DIR", OSError, test.export_xmodel, value, deploy_check=True))
    assert _tree(tmp_path) == before


class _Dict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layers = nn.ModuleDict({"a-b": nn.LSTM(2, 4, batch_first=True), "a/b": nn.LSTM(2, 4, batch_first=True)})

    def forward(self, x):
        return self.layers["a/b"](self.layers["a-b"](x)[0][..., :2])[0]


def test_module_names_that_become_one_file_name_are_refused_early(tmp_path: Path) -> None:
    """Issue 13, item 9: ModuleDict keys `a-b` and `a/b` give different graph names but the same
    file and op names: NAME_COLLISION when the quantizer is created, before any file."""
    err = _raises("NAME_COLLISION", RuntimeError, _quantizer, "calib", _Dict(), tmp_path / "out")
    assert "LayersA-b_StandardLstmCell_layer_0_forward" in str(err)
    assert "LayersA/b_StandardLstmCell_layer_0_forward" in str(err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unreadable_calibration_result(tmp_path: Path, monkeypatch) -> None:
    """Issue 13, item 9: quant_info.json that cannot be read (a permission problem, simulated
    where the tests run as root, or a directory in its place): CALIB_RESULT_UNREADABLE."""
    _calib_and_test(Holder(), tmp_path, _x())
    real_read = Path.read_bytes

    def denied(self):
        if self.name == "quant_info.json":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_bytes", denied)
        err = _raises("CALIB_RESULT_UNREADABLE", ValueError, _quantizer, "test", Holder(), tmp_path)
    assert "PermissionError: Permission denied" in str(err) and str(tmp_path / "quant_info.json") in str(err)
    other = tmp_path / "other"
    (other / "quant_info.json").mkdir(parents=True)
    assert "IsADirectoryError" in str(_raises("CALIB_RESULT_UNREADABLE", ValueError, _quantizer, "test",
                                              Holder(), other))


def test_a_huge_name_is_cut_in_messages(tmp_path: Path) -> None:
    """Issue 13, item 9: a 10 MB module name is not echoed whole in a message."""
    name = "n" * 10_000_000
    calib = _quantizer("calib", Holder(name), tmp_path)
    with pytest.raises(NndctError) as info:
        calib.quant_model(torch.randn(2, 3, 5))
    text = str(info.value)
    assert info.value.msg_id == "QUANTIZER_TORCH_SHAPE_MISMATCH" and len(text) < 2000
    assert "more characters]" in text and len(info.value.fields["what"]) > 10_000_000
    assert max(len(p.read_bytes()) for p in tmp_path.glob("*.py")) < 20_000  # cut in the source too
