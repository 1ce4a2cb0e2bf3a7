"""Every export of the PyTorch LSTM flow killed (SIGKILL) at every step of its commit: readers of
output_dir see the old complete result or the new one, never a mix, and the next run's sweep
leaves no debris (issue 13; the mechanism: nndct_shared/export_commit.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from helpers.kill_steps import expect_one_switch, kill_at_every_step, one_torch_thread
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")


class Net(nn.Module):
    """One LSTM (bidirectional: two cells, so two xmodels and two dump directories per export)."""

    def __init__(self, seed: int, hidden: int = 4, bidirectional: bool = False) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.LSTM(3, hidden, batch_first=True, bidirectional=bidirectional)

    def forward(self, x):
        return self.rnn(x)[0]


def _x(steps: int, seed: int) -> torch.Tensor:
    return torch.randn(2, steps, 3, generator=torch.Generator().manual_seed(seed))


def _quantizer(mode: str, model: nn.Module, out: Path):
    return torch_quantizer(mode, model, bitwidth=16, lstm=True, output_dir=str(out), device=CPU)


def _calibrated(model: nn.Module, out: Path, x: torch.Tensor):
    calib = _quantizer("calib", model, out)
    calib.quant_model(x)
    calib.export_quant_config()
    return calib


def test_kills_during_the_cell_modules_of_a_new_quantizer(tmp_path):
    out = tmp_path / "out"
    _quantizer("calib", Net(0, hidden=4, bidirectional=True), out)  # the old <graph>.py files
    seen = kill_at_every_step(out, lambda: _quantizer("calib", Net(0, hidden=3, bidirectional=True), out),
                              one_torch_thread)
    expect_one_switch(seen)
    assert b"hidden size 3" in (out / "Rnn_StandardLstmCell_layer_0_backward.py").read_bytes()


def test_kills_during_export_quant_config(tmp_path):
    out = tmp_path / "out"
    _calibrated(Net(0), out, _x(5, 0))
    second = _quantizer("calib", Net(1), out)
    second.quant_model(_x(5, 1) * 20)  # other ranges: other fix positions
    old = (out / "quant_info.json").read_bytes()
    seen = kill_at_every_step(out, second.export_quant_config, one_torch_thread)
    expect_one_switch(seen)
    assert (out / "quant_info.json").read_bytes() != old


def test_kills_during_export_xmodel_with_dumps(tmp_path):
    """The old export has 3 frames, the new one 2 (and other weights): the xmodel and the frames
    change together, and frame 2 disappears at the same moment."""
    first, second = tmp_path / "qa", tmp_path / "qb"
    _calibrated(Net(0), first, _x(3, 0))
    _calibrated(Net(1), second, _x(2, 1))
    a, b = _quantizer("test", Net(0), first), _quantizer("test", Net(1), second)
    a.quant_model(_x(3, 0))
    b.quant_model(_x(2, 1))
    out = tmp_path / "export"
    a.export_xmodel(str(out), deploy_check=True)
    seen = kill_at_every_step(out, lambda: b.export_xmodel(str(out), deploy_check=True), one_torch_thread)
    expect_one_switch(seen)
    frames = sorted(p.name for p in (out / "deploy_check_data_int" / "Rnn_StandardLstmCell_layer_0_forward").iterdir())
    assert frames == ["frame_0", "frame_1"]
    assert len(seen) >= 10


@pytest.mark.parametrize("first_steps, second_steps", [(10, 6)])
def test_a_shorter_sequence_after_a_longer_one_leaves_only_its_frames(tmp_path, first_steps, second_steps):
    """Issue 13, item 5: T=10 then T=6 into the same directory leaves exactly frame_0..frame_5."""
    _calibrated(Net(0, bidirectional=True), tmp_path, _x(first_steps, 0))
    test = _quantizer("test", Net(0, bidirectional=True), tmp_path)
    test.quant_model(_x(first_steps, 0))
    test.export_xmodel(str(tmp_path), deploy_check=True)
    dumps = tmp_path / "deploy_check_data_int"
    assert {len(list(g.iterdir())) for g in dumps.iterdir()} == {first_steps}
    again = _quantizer("test", Net(0, bidirectional=True), tmp_path)
    again.quant_model(_x(second_steps, 2))
    again.export_xmodel(str(tmp_path), deploy_check=True)
    for graph in dumps.iterdir():
        assert sorted(p.name for p in graph.iterdir()) == [f"frame_{t}" for t in range(second_steps)]
    again.export_xmodel(str(tmp_path), deploy_check=False)  # dumps without xmodels' forward: gone
    assert not (tmp_path / "deploy_check_data_int").exists() and (tmp_path / "xmodel").is_dir()
