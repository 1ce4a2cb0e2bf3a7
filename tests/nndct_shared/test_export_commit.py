"""The commit mechanism of exports (`nndct_shared.export_commit`) on its own: layout, what a unit
replaces and carries, failures, the sweep, the lock, readers, take-over of an older layout and
the fallback without symlinks. Kills at every step of real exports:
tests/pytorch_nndct/test_lstm_export_kills.py, tests/pytorch_nndct/cnn/test_cnn_export_kills.py,
tests/tf_nndct/test_keras_output_safety.py."""
from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from helpers.fault_injection import fail_on_call
from helpers.kill_steps import run_in_child
from helpers.output_tree import raw_tree, store_debris, visible_tree
from nndct_shared import export_commit
from nndct_shared.export_commit import CURRENT, STAGING, STORE_DIR, VERSIONS, export_unit, output_lock, snapshot, sweep
from nndct_shared.messages import NndctError, OutputDirError
from nndct_shared.output_dir import checked_output_dir, staged_export


def _export(out: Path, files: dict[str, bytes], dirs: dict[str, dict[str, bytes]] = {}, owns=()) -> None:  # noqa: B006
    with export_unit(out, owns) as unit:
        for name, data in files.items():
            unit.write_bytes(out / name, data)
        for name, content in dirs.items():
            staged = unit.directory(out / name)
            for file_name, data in content.items():
                (staged / file_name).write_bytes(data)


def _frames(n: int, tag: bytes) -> dict[str, dict[str, bytes]]:
    return {f"dumps/g/frame_{t}": {"x.txt": tag + bytes([48 + t])} for t in range(n)}


def test_an_export_is_a_version_behind_stable_links(tmp_path):
    out = tmp_path / "out"
    _export(out, {"quant_info.json": b"{}", "xmodel/a_int.xmodel": b"A"}, _frames(2, b"a"))
    assert visible_tree(out) == {
        "dumps": None, "dumps/g": None, "dumps/g/frame_0": None, "dumps/g/frame_0/x.txt": b"a0",
        "dumps/g/frame_1": None, "dumps/g/frame_1/x.txt": b"a1", "quant_info.json": b"{}",
        "xmodel": None, "xmodel/a_int.xmodel": b"A"}
    for name in ("dumps", "quant_info.json", "xmodel"):
        assert os.readlink(out / name) == f"{STORE_DIR}/{CURRENT}/{name}"
    current = os.readlink(out / STORE_DIR / CURRENT)
    assert current.startswith(f"{VERSIONS}/") and (out / STORE_DIR / current / "quant_info.json").is_file()
    assert store_debris(out) == []


def test_a_unit_replaces_what_it_writes_and_owns_and_carries_the_rest(tmp_path):
    out = tmp_path / "out"
    _export(out, {"quant_info.json": b"q1", "xmodel/a_int.xmodel": b"A1", "xmodel/other.xmodel": b"O"},
            _frames(10, b"a"))
    # an export of 6 frames owns the whole graph directory: frames 6..9 go
    _export(out, {"xmodel/a_int.xmodel": b"A2"}, _frames(6, b"b"), owns=["dumps/g"])
    tree = visible_tree(out)
    assert sorted(n for n in tree if n.startswith("dumps/g/frame_") and n.count("/") == 2) == [
        f"dumps/g/frame_{t}" for t in range(6)]
    assert tree["dumps/g/frame_5/x.txt"] == b"b5"
    assert tree["quant_info.json"] == b"q1" and tree["xmodel/other.xmodel"] == b"O"  # carried
    assert tree["xmodel/a_int.xmodel"] == b"A2"
    # owning without writing removes
    _export(out, {"xmodel/a_int.xmodel": b"A3"}, owns=["dumps/g", "bias_corr.pth"])
    assert "dumps/g" not in visible_tree(out) and visible_tree(out)["quant_info.json"] == b"q1"
    assert not os.path.lexists(out / "dumps")  # the name no version has is unlinked
    assert store_debris(out) == []


def test_carried_files_are_hard_links_not_copies(tmp_path):
    out = tmp_path / "out"
    _export(out, {"big.bin": b"x" * 1000})
    inode = (out / "big.bin").stat().st_ino
    _export(out, {"small.txt": b"s"})
    assert (out / "big.bin").stat().st_ino == inode
    assert len(list((out / STORE_DIR / VERSIONS).iterdir())) == 2  # current and previous


def test_an_exception_in_the_block_changes_nothing(tmp_path):
    out = tmp_path / "out"
    _export(out, {"a.txt": b"1"}, _frames(2, b"a"))
    before = raw_tree(out)
    with pytest.raises(RuntimeError):
        with export_unit(out) as unit:
            unit.write_bytes(out / "a.txt", b"2")
            unit.directory(out / "dumps" / "g" / "frame_0")
            raise RuntimeError("rendering failed")
    assert raw_tree(out) == before


def test_a_failed_first_export_leaves_no_directory(tmp_path, monkeypatch):
    fail_on_call(monkeypatch, export_commit.os, "rename", 1)  # staging -> version
    with pytest.raises(OutputDirError):
        with staged_export(tmp_path / "a" / "b") as unit:
            unit.write_bytes(unit.root / "x.txt", b"1")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("where", "want_dir", "message"), [
    ("x.txt", True, "a file of that name is in the way"),
    ("d", False, "a directory of that name is in the way"),
    ("x.txt/inner", False, "a file of that name is in the way"),
])
def test_something_in_the_way_is_found_before_anything_is_written(tmp_path, where, want_dir, message):
    out = tmp_path / "out"
    _export(out, {"x.txt": b"1", "d/y.txt": b"2"})
    before = raw_tree(out)
    with pytest.raises(OSError, match=message):
        with export_unit(out) as unit:
            unit.directory(out / where) if want_dir else unit.write_bytes(out / where, b"3")
    assert raw_tree(out) == before


def test_paths_outside_the_directory_or_into_the_store_are_refused(tmp_path):
    out = tmp_path / "out"
    for bad in (tmp_path / "elsewhere.txt", out / STORE_DIR / "x", out):
        with pytest.raises(ValueError):
            with export_unit(out) as unit:
                unit.write_bytes(bad, b"1")
    assert not out.exists()


def test_the_sweep_removes_what_killed_runs_left(tmp_path):
    out = tmp_path / "out"
    _export(out, {"a.txt": b"1"})
    _export(out, {"a.txt": b"2"})
    store = out / STORE_DIR
    (store / VERSIONS / "dead-version").mkdir()  # made, never switched to
    (store / VERSIONS / "dead-version" / "a.txt").write_bytes(b"3")
    (store / STAGING / "123-dead").mkdir(parents=True)  # an export whose process died
    (store / STAGING / "123-dead.lock").write_bytes(b"")
    (store / STAGING / "124-nolock").mkdir()
    os.symlink("versions/x", store / ".current-1-2.tmp")
    os.symlink("x", out / ".nndct-link-1-2.tmp")
    os.symlink(f"{STORE_DIR}/{CURRENT}/gone", out / "gone")  # linked before a switch that never came
    old = time.time() - 2 * export_commit.LEGACY_DEBRIS_AGE_S
    for name in (".quant_info.json.ab12cd_9.tmp", ".frame_3.0123456789ab.old"):
        (out / name).write_bytes(b"old")
        os.utime(out / name, (old, old))
    (out / ".quant_info.json.zz12cd_9.tmp").write_bytes(b"young: may be a live writer's")
    (out / "user.tmp.notes").write_bytes(b"not debris")
    assert len(store_debris(out)) > 5
    visible = visible_tree(out)
    sweep(out)
    assert store_debris(out) == [".quant_info.json.zz12cd_9.tmp"]
    assert (out / "user.tmp.notes").read_bytes() == b"not debris"
    assert visible_tree(out) == {k: v for k, v in visible.items() if not k.startswith(".quant_info.json.ab")
                                 and not k.startswith(".frame_3")}


def test_the_sweep_keeps_a_live_export(tmp_path):
    out = tmp_path / "out"
    with export_unit(out) as unit:
        unit.write_bytes(out / "a.txt", b"1")
        sweep(out)  # another process sweeping meanwhile: the staging directory is flock'd
        unit.write_bytes(out / "b.txt", b"2")
    assert visible_tree(out) == {"a.txt": b"1", "b.txt": b"2"}


def test_the_sweep_tolerates_an_export_that_finishes_while_it_looks(tmp_path, monkeypatch):
    """Another process's unit drops its staging lock file without the directory lock: a sweep
    that listed the file must not fail when it is gone by the time it opens it (a race seen with
    two processes exporting into one output_dir)."""
    out = tmp_path / "out"
    with export_unit(out) as unit:
        unit.write_bytes(out / "a.txt", b"1")
        real_open = os.open

        def vanished(path, *args, **kwargs):
            if str(path).endswith(".lock") and STAGING in str(path):
                raise FileNotFoundError(errno.ENOENT, "gone", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(export_commit.os, "open", vanished)
        sweep(out)
        monkeypatch.setattr(export_commit.os, "open", real_open)
        unit.write_bytes(out / "b.txt", b"2")
    assert visible_tree(out) == {"a.txt": b"1", "b.txt": b"2"}


def test_a_held_lock_makes_a_second_writer_wait_then_fail_busy(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _export(out, {"a.txt": b"1"})
    before = raw_tree(out)
    monkeypatch.setenv(export_commit.LOCK_TIMEOUT_ENV, "0.2")
    with output_lock(out):
        start = time.monotonic()
        with pytest.raises(OutputDirError) as info:
            _export(out, {"a.txt": b"2"})
        assert time.monotonic() - start >= 0.2
    err = info.value
    assert isinstance(err, NndctError) and err.msg_id == "QUANTIZER_TORCH_OUTPUT_BUSY"
    assert f"process {os.getpid()}" in str(err) and "NNDCT_OUTPUT_LOCK_TIMEOUT" in str(err)
    assert {k: v for k, v in raw_tree(out).items() if not k.endswith("/lock")} == {
        k: v for k, v in before.items() if not k.endswith("/lock")}
    _export(out, {"a.txt": b"2"})  # released: it goes through
    assert visible_tree(out) == {"a.txt": b"2"}


def test_a_snapshot_reads_one_version(tmp_path):
    out = tmp_path / "out"
    _export(out, {"quant_info.json": b"q1", "quant_info_float.json": b"f1"})
    pinned = snapshot(out)
    _export(out, {"quant_info.json": b"q2", "quant_info_float.json": b"f2"})
    assert pinned.path("quant_info.json").read_bytes() == b"q1"
    assert pinned.path("quant_info_float.json").read_bytes() == b"f1"
    assert snapshot(out).path("quant_info.json").read_bytes() == b"q2"
    (out / "legacy.json").write_bytes(b"l")  # not managed: read where it is
    assert snapshot(out).path("legacy.json") == out / "legacy.json"


def test_an_older_layout_is_taken_over_with_its_content(tmp_path):
    """Real files and directories written by an older release: the export links them into the
    store with unchanged content (their hidden temporaries left out), then replaces them."""
    out = tmp_path / "out"
    (out / "deploy_check_data_int" / "g" / "frame_0").mkdir(parents=True)
    (out / "deploy_check_data_int" / "g" / "frame_0" / "x.txt").write_bytes(b"old")
    (out / "deploy_check_data_int" / "g" / ".frame_3.0123456789ab.old").mkdir()
    (out / "deploy_check_data_int" / "other").mkdir()
    (out / "deploy_check_data_int" / "other" / "y.bin").write_bytes(b"other graph")
    (out / "quant_info.json").write_bytes(b"q")
    (out / "notes.txt").write_bytes(b"the user's")
    _export(out, {"deploy_check_data_int/g/frame_0/x.txt": b"new"}, owns=["deploy_check_data_int/g"])
    assert visible_tree(out) == {
        "deploy_check_data_int": None, "deploy_check_data_int/g": None, "deploy_check_data_int/g/frame_0": None,
        "deploy_check_data_int/g/frame_0/x.txt": b"new", "deploy_check_data_int/other": None,
        "deploy_check_data_int/other/y.bin": b"other graph", "notes.txt": b"the user's", "quant_info.json": b"q"}
    assert (out / "deploy_check_data_int").is_symlink() and not (out / "quant_info.json").is_symlink()
    assert not (out / "notes.txt").is_symlink() and store_debris(out) == []


def test_without_symlinks_exports_are_swapped_entry_by_entry_with_a_warning(tmp_path, monkeypatch, caplog):
    def no_symlinks(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(export_commit.os, "symlink", no_symlinks)
    monkeypatch.setattr(export_commit, "_degraded_reasons", {})
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="nndct"):
        _export(out, {"quant_info.json": b"q1", "bias_corr.pth": b"b1"}, _frames(3, b"a"))
        _export(out, {"quant_info.json": b"q2"}, _frames(2, b"b"), owns=["dumps/g", "bias_corr.pth"])
    assert "[QUANTIZER_TORCH_OUTPUT_NOT_ATOMIC]" in caplog.text and "symbolic links cannot be created" in caplog.text
    assert caplog.text.count("OUTPUT_NOT_ATOMIC") == 1  # once per directory
    assert visible_tree(out) == {
        "dumps": None, "dumps/g": None, "dumps/g/frame_0": None, "dumps/g/frame_0/x.txt": b"b0",
        "dumps/g/frame_1": None, "dumps/g/frame_1/x.txt": b"b1", "quant_info.json": b"q2"}
    assert not (out / "quant_info.json").is_symlink()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] in ([], [STORE_DIR])
    assert not any((out / STORE_DIR / STAGING).iterdir())


@pytest.mark.parametrize(("value", "reason"), [
    (None, "it is a NoneType, not a path"),
    (b"quantize_result", "it is a bytes path"),
    (3, "it is a int, not a path"),
    ("quant\0result", "contains a NUL character"),
    ("", "it is an empty string"),
])
def test_output_dir_arguments_that_are_not_paths(value, reason):
    with pytest.raises(OutputDirError) as info:
        checked_output_dir(value)
    assert info.value.msg_id == "QUANTIZER_TORCH_OUTPUT_DIR" and reason in str(info.value)
    assert "\0" not in str(info.value)


def test_kills_while_an_older_layout_is_taken_over(tmp_path):
    """Killed at every step of an export into a directory an older release wrote: readers see
    the old or the new result, except for the documented moment between moving an old real
    directory aside and linking it (the next sweep puts the link back), and the sweep always
    leaves one of the two complete results and no debris."""
    out, template = tmp_path / "out", tmp_path / "template"
    (template / "deploy_check_data_int" / "g" / "frame_0").mkdir(parents=True)
    (template / "deploy_check_data_int" / "g" / "frame_0" / "x.txt").write_bytes(b"old")
    (template / "deploy_check_data_int" / "g" / "frame_1").mkdir()
    (template / "quant_info.json").write_bytes(b"old")

    def export() -> None:
        _export(out, {"quant_info.json": b"new"}, {"deploy_check_data_int/g/frame_0": {"x.txt": b"new"}},
                owns=["deploy_check_data_int/g"])

    def restore() -> None:
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(template, out, symlinks=True)

    restore()
    old = visible_tree(out)
    trace = tmp_path / "steps"
    assert run_in_child(export, {export_commit.TRACE_ENV: str(trace)}) == 0
    new = visible_tree(out)
    steps = [line.split("\t", 1)[1] for line in trace.read_text().splitlines()]
    assert "took over: switched" in steps and "moved aside deploy_check_data_int" in steps
    for k, label in enumerate(steps, start=1):
        restore()
        status = run_in_child(export, {export_commit.FAULT_STEP_ENV: str(k)})
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        tree = visible_tree(out)
        if label == "moved aside deploy_check_data_int":
            assert tree == {"quant_info.json": b"old"}
        else:
            assert tree in (old, new), label
        sweep(out)
        assert store_debris(out) == [] and visible_tree(out) in (old, new), label
