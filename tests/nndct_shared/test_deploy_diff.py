"""`python -m nndct_shared.deploy_check diff`: real LSTM and GRU (bidirectional, txt frames) and CNN
(bin) dumps of our flows, one code changed on purpose, found at the right frame and node."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared.deploy_check import dump_file_stem
from nndct_shared.deploy_diff import compare_trees, format_diff, main, read_codes
from nndct_shared.messages import NndctError
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")


class _BiLstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0]


class _BiGru(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.rnn(x)[0]


class _Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def _rnn_dump(model: nn.Module, out: Path) -> Path:
    x = torch.randn(2, 5, 3)
    q = torch_quantizer("calib", model, bitwidth=8, lstm=True, output_dir=str(out), device=CPU)
    q.quant_model(x)
    q.export_quant_config()
    q = torch_quantizer("test", model, bitwidth=8, lstm=True, output_dir=str(out), device=CPU)
    q.quant_model(x)
    q.export_xmodel(str(out), deploy_check=True)
    return out


@pytest.fixture(scope="module")
def lstm_dump(tmp_path_factory):
    torch.manual_seed(0)
    return _rnn_dump(_BiLstm().eval(), tmp_path_factory.mktemp("lstm"))


@pytest.fixture(scope="module")
def gru_dump(tmp_path_factory):
    torch.manual_seed(0)
    return _rnn_dump(_BiGru().eval(), tmp_path_factory.mktemp("gru"))


@pytest.fixture(scope="module")
def cnn_dump(tmp_path_factory):
    torch.manual_seed(0)
    model, out = _Cnn().eval(), tmp_path_factory.mktemp("cnn")
    x = torch.rand(8, 1, 4, 4)
    q = torch_quantizer("calib", model, x, output_dir=str(out), device=CPU)
    q.quant_model(x)
    q.export_quant_config()
    q = torch_quantizer("test", model, x[:1], output_dir=str(out), device=CPU)
    q.quant_model(x[:1])
    q.export_xmodel(str(out), deploy_check=True)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _change_txt_code(path: Path, index: int, by: int) -> None:
    values = path.read_text().split("\n")
    values[index] = "%g" % (int(values[index]) + by)
    path.write_text("\n".join(values))


def test_identical_trees_agree_and_exit_zero(lstm_dump, tmp_path, capsys):
    other = _copy(lstm_dump, tmp_path / "b")
    diffs = compare_trees(lstm_dump, other)
    assert [d.graph for d in diffs] == ["Rnn_StandardLstmCell_layer_0_backward", "Rnn_StandardLstmCell_layer_0_forward"]
    assert all(d.agree for d in diffs)
    # 5 frames; 24 nodes per frame plus 12 parameters in frame 0
    assert [(d.frames, d.records) for d in diffs] == [(5, 5 * 24 + 12)] * 2
    assert main(["diff", str(lstm_dump), str(other)]) == 0
    assert "summary: 0 of 2 graph(s) differ" in capsys.readouterr().out


def test_one_changed_code_is_found_at_its_frame_and_node(lstm_dump, tmp_path):
    other = _copy(lstm_dump, tmp_path / "b")
    graph = "Rnn_StandardLstmCell_layer_0_backward"
    node = f"{graph}::it*cct"
    path = other / "deploy_check_data_int" / graph / "frame_3" / f"{dump_file_stem(node)}_fix.txt"
    _change_txt_code(path, 5, +1)
    diffs = {d.graph: d for d in compare_trees(lstm_dump / "deploy_check_data_int", other)}
    assert diffs["Rnn_StandardLstmCell_layer_0_forward"].agree
    d = diffs[graph]
    assert (d.first.frame, d.first.node, d.first.differing, d.first.max_abs, d.first.count) == (3, node, 1, 1, 8)
    assert d.differing == 1 and len(d.diffs) == 1
    text = format_diff(list(diffs.values()))
    assert f"first at frame_3, node '{node}': 1 of 8 codes differ, by at most 1" in text
    # within a tolerance of one code the trees agree
    assert all(x.agree for x in compare_trees(lstm_dump, other, tolerance=1))


def test_gru_dump_one_changed_code_is_found_at_its_frame_and_node(gru_dump, tmp_path, capsys):
    other = _copy(gru_dump, tmp_path / "b")
    graphs = ["Rnn_StandardGruCell_layer_0_backward", "Rnn_StandardGruCell_layer_0_forward"]
    same = compare_trees(gru_dump, other)
    assert [d.graph for d in same] == graphs and all(d.agree for d in same)
    assert [(d.frames, d.records) for d in same] == [(5, 5 * 19 + 12)] * 2  # 19 nodes, 12 parameters
    graph = graphs[0]
    root = other / "deploy_check_data_int" / graph
    node = f"{graph}::it*(w_hg * input_1 + bias_hg)"  # the reset gate times the candidate's recurrent branch
    _change_txt_code(root / "frame_3" / f"{dump_file_stem(node)}_fix.txt", 6, -1)
    later = f"{graph}::h_next"  # processed after it in the same frame, and a later frame
    _change_txt_code(root / "frame_3" / f"{dump_file_stem(later)}_fix.txt", 2, 2)
    _change_txt_code(root / "frame_4" / f"{dump_file_stem(graph + '::input_1')}_fix.txt", 0, 1)
    diffs = {d.graph: d for d in compare_trees(gru_dump / "deploy_check_data_int", other)}
    assert diffs[graphs[1]].agree
    d = diffs[graph]
    assert (d.first.frame, d.first.node, d.first.differing, d.first.max_abs, d.first.count) == (3, node, 1, 1, 8)
    assert [(x.frame, x.node) for x in d.diffs] == [(3, node), (3, later), (4, f"{graph}::input_1")]
    assert d.differing == 3 and d.max_abs == 2
    assert main(["diff", str(gru_dump), str(other)]) == 1
    assert f"first at frame_3, node '{node}': 1 of 8 codes differ, by at most 1" in capsys.readouterr().out
    assert all(x.agree for x in compare_trees(gru_dump, other, tolerance=2))


def test_the_earliest_difference_is_reported_first(lstm_dump, tmp_path):
    other = _copy(lstm_dump, tmp_path / "b")
    graph = "Rnn_StandardLstmCell_layer_0_forward"
    root = other / "deploy_check_data_int" / graph
    _change_txt_code(root / "frame_4" / f"{dump_file_stem(graph + '::input_1')}_fix.txt", 0, -2)
    _change_txt_code(root / "frame_2" / f"{dump_file_stem(graph + '::h_next')}_fix.txt", 7, 3)
    _change_txt_code(root / "frame_2" / f"{dump_file_stem(graph + '::y_f')}_fix.txt", 1, 1)  # before h_next
    d = {x.graph: x for x in compare_trees(lstm_dump, other)}[graph]
    assert [(x.frame, x.node.split("::")[1], x.max_abs) for x in d.diffs] == [(2, "y_f", 1), (2, "h_next", 3),
                                                                              (4, "input_1", 2)]
    assert d.max_abs == 3 and d.differing == 3


def test_changed_parameter_code_in_frame_0(lstm_dump, tmp_path):
    other = _copy(lstm_dump, tmp_path / "b")
    graph = "Rnn_StandardLstmCell_layer_0_forward"
    path = other / "deploy_check_data_int" / graph / "frame_0" / f"{dump_file_stem(graph + '::weight_hg')}_fix.txt"
    _change_txt_code(path, 0, 1)
    d = {x.graph: x for x in compare_trees(lstm_dump, other)}[graph]
    assert (d.first.frame, d.first.node) == (0, dump_file_stem(graph + "::weight_hg"))


def test_cnn_bin_dump_one_code_changed(cnn_dump, tmp_path):
    other = _copy(cnn_dump, tmp_path / "b")
    root = other / "deploy_check_data_int"
    (graph_dir,) = [p for p in root.iterdir() if p.is_dir()]
    names = [line.split(": ", 1)[1] for line in (graph_dir / "shape.txt").read_text().splitlines()]
    target = names[2]
    path = graph_dir / f"{dump_file_stem(target)}_fix.bin"
    codes = np.frombuffer(path.read_bytes(), dtype=np.int8).copy()
    codes[4] = codes[4] + 1 if codes[4] < 127 else codes[4] - 1
    path.write_bytes(codes.tobytes())
    (d,) = compare_trees(cnn_dump, other)
    assert not d.framed and (d.first.frame, d.first.node, d.first.differing) == (None, target, 1)
    # every code of the unchanged tree decodes to what the writer wrote (int8 for 8 bits)
    original = read_codes(cnn_dump / "deploy_check_data_int" / graph_dir.name, dump_file_stem(target), codes.size,
                          cnn_dump)
    assert np.count_nonzero(original != codes) == 1


def test_command_line_exit_status_and_errors(lstm_dump, tmp_path):
    other = _copy(lstm_dump, tmp_path / "b")
    graph = "Rnn_StandardLstmCell_layer_0_forward"
    _change_txt_code(other / "deploy_check_data_int" / graph / "frame_1" /
                     f"{dump_file_stem(graph + '::c_next')}_fix.txt", 2, 1)
    run = lambda *a: subprocess.run([sys.executable, "-m", "nndct_shared.deploy_check", "diff", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True)
    result = run(lstm_dump, other)
    assert result.returncode == 1 and "first at frame_1" in result.stdout
    assert run(lstm_dump, other, "--tolerance", "1").returncode == 0
    bad = run(lstm_dump, tmp_path / "missing")
    assert bad.returncode == 2 and "DEPLOY_DIFF_NOT_A_DUMP" in bad.stderr


def test_truncated_and_foreign_trees_are_catalogued_errors(lstm_dump, cnn_dump, tmp_path):
    graph = "Rnn_StandardLstmCell_layer_0_forward"
    cut = _copy(lstm_dump, tmp_path / "cut")
    shutil.rmtree(cut / "deploy_check_data_int" / graph / "frame_4")
    with pytest.raises(NndctError) as info:
        compare_trees(lstm_dump, cut)
    assert info.value.msg_id.endswith("DEPLOY_DIFF_TRUNCATED") and "frame_4" in str(info.value)

    short = _copy(lstm_dump, tmp_path / "short")
    path = short / "deploy_check_data_int" / graph / "frame_2" / f"{dump_file_stem(graph + '::ot')}_fix.txt"
    path.write_text("\n".join(path.read_text().split("\n")[:5]))
    with pytest.raises(NndctError) as info:
        compare_trees(lstm_dump, short)
    assert info.value.msg_id.endswith("DEPLOY_DIFF_TRUNCATED") and "holds 5 codes" in str(info.value)

    with pytest.raises(NndctError) as info:
        compare_trees(lstm_dump, cnn_dump)
    assert info.value.msg_id.endswith("DEPLOY_DIFF_FOREIGN")

    empty = tmp_path / "empty"
    (empty / "somewhere").mkdir(parents=True)
    with pytest.raises(NndctError) as info:
        compare_trees(empty, lstm_dump)
    assert info.value.msg_id.endswith("DEPLOY_DIFF_NOT_A_DUMP")
