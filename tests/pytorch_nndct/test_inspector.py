"""`Inspector(target).inspect(model, input)` on real PyTorch models: the capture is the CNN
quantizer's, the partition and report the neutral inspector's."""
from __future__ import annotations

import logging
import shutil

import pytest
import torch
from torch import nn

from helpers.kill_steps import expect_one_switch, kill_at_every_step, one_torch_thread
from helpers.output_tree import visible_tree
from nndct_shared.messages import NndctError
from pytorch_nndct.apis import Inspector


class Net(nn.Module):
    """A conv the DPU runs, a kernel beyond its limit, a leaky slope it lacks, a sigmoid."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.big = nn.Conv2d(8, 8, 17, padding=8)
        self.leaky = nn.LeakyReLU(0.2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.leaky(self.big(self.relu(self.conv1(x))))
        return torch.sigmoid(self.fc(torch.flatten(self.pool(x), 1)))


def _by_module(result, fragment: str):
    matches = [a for a in result.assignments.values() if fragment in a.name]
    assert matches, f"no node named like {fragment!r} in {list(result.assignments)}"
    return matches[0]


def test_inspect_assigns_devices_with_reasons_and_writes_the_report(tmp_path):
    torch.manual_seed(0)
    inspector = Inspector("DPUCZDX8G_ISA1_B4096")
    result = inspector.inspect(Net(), torch.randn(1, 3, 32, 32), device="cpu", output_dir=str(tmp_path),
                               verbose_level=0, image_format="svg" if shutil.which("dot") else None)
    assert _by_module(result, "conv1").device == "DPU"
    big = _by_module(result, "big")
    assert big.device == "CPU" and "kernel" in big.reason.lower()
    leaky = _by_module(result, "leaky")
    assert leaky.device == "CPU" or "0.1015625" in " ".join(leaky.notes) + leaky.reason
    report = (tmp_path / "inspect_DPUCZDX8G_ISA1_B4096.txt").read_text()
    assert big.name in report and big.reason in report
    if shutil.which("dot"):
        assert (tmp_path / "inspect_DPUCZDX8G_ISA1_B4096.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
        assert (tmp_path / "inspect_DPUCZDX8G_ISA1_B4096.gv").is_file()


def test_fingerprint_and_name_select_the_same_target():
    by_name = Inspector("DPUCZDX8G_ISA1_B4096").target
    by_print = Inspector(by_name.fingerprint).target
    assert by_print.name == by_name.name


def test_unknown_target_and_bad_module_are_catalogued(tmp_path):
    with pytest.raises(NndctError) as info:
        Inspector("DPU_THAT_DOES_NOT_EXIST")
    assert info.value.msg_id == "QUANTIZER_TORCH_UNKNOWN_TARGET" and "DPUCZDX8G_ISA1_B4096" in str(info.value)
    for fingerprint in ("0x7f00000000000001", 0x7F00000000000001):   # the guide's ID for fingerprints
        with pytest.raises(NndctError) as info:
            Inspector(fingerprint)
        assert info.value.msg_id == "QUANTIZER_TORCH_INSPECTOR_INPUT_FORMAT"
    with pytest.raises(TypeError) as info:
        Inspector("DPUCZDX8G_ISA1_B4096").inspect(Net().state_dict(), torch.randn(1, 3, 8, 8), output_dir=str(tmp_path))
    assert info.value.msg_id == "QUANTIZER_TORCH_MODULE_TYPE"


def test_every_operator_of_the_report_has_its_device_and_reason(tmp_path):
    torch.manual_seed(0)
    result = Inspector("DPUCZDX8G_ISA1_B4096").inspect(Net(), torch.randn(1, 3, 32, 32), device="cpu",
                                                       output_dir=str(tmp_path), verbose_level=0)
    report = (tmp_path / "inspect_DPUCZDX8G_ISA1_B4096.txt").read_text()
    blocks = report.split("\nnode name: ")[1:]
    assert [b.splitlines()[0] for b in blocks] == list(result.assignments)
    devices = {}
    for block in blocks:
        lines = block.splitlines()
        device = next(line.split(": ", 1)[1] for line in lines if line.startswith("assigned device: "))
        key = "dpu engine: " if device == "DPU" else "hardware constraints: "
        reason = [line for line in lines if line.startswith(key)]
        assert len(reason) == 1 and len(reason[0]) > len(key) + 10, block
        devices[lines[0]] = device
    assert devices == {a.name: a.device for a in result.assignments.values()}
    cpu = sorted(_by_module(result, part).name for part in ("big", "leaky", "sigmoid"))
    assert sorted(n for n, d in devices.items() if d == "CPU") == cpu
    assert _by_module(result, "conv1").why.endswith("limits of the conv_engine.")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG\r\n")])
def test_gv_and_picture_with_graphviz(tmp_path, fmt, magic):
    result = Inspector("DPUCAHX8L_ISA0_SP").inspect(Net(), torch.randn(1, 3, 32, 32), device="cpu",
                                                    output_dir=str(tmp_path), verbose_level=0,
                                                    image_format=fmt)
    stem = tmp_path / "inspect_DPUCAHX8L_ISA0_SP"
    assert sorted(visible_tree(tmp_path)) == sorted(
        f"{stem.name}.{ext}" for ext in ("txt", "gv", fmt))
    source = stem.with_suffix(".gv").read_text()
    assert source.startswith('digraph "Net" {')
    for assignment in result.assignments.values():
        assert f"name:{assignment.name}" in source
    assert magic in stem.with_suffix(f".{fmt}").read_bytes()[:400]


def test_inspect_leaves_the_users_module_alone(tmp_path, caplog):
    model = Net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="nndct"):
        Inspector("DPUCZDX8G_ISA1_B4096").inspect(model, torch.randn(1, 3, 16, 16),
                                                  output_dir=str(tmp_path), verbose_level=0)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    if not torch.cuda.is_available():   # the reference's default device is cuda
        assert any("CUDA_UNAVAILABLE" in r.getMessage() for r in caplog.records)


class _SmallNet(nn.Module):
    """Another model for the same target: other nodes, so another report and picture."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1), 1))


def test_kills_during_an_inspection_leave_one_whole_inspection(tmp_path):
    """Issue 13: the report and the pictures of one inspect() call are one export unit. Killed
    (SIGKILL) at every step of its commit, an inspection over an earlier one leaves the earlier
    report with its own picture or the new report with its own; a later inspection without the
    earlier picture format owns the target's pictures, so the earlier svg goes."""
    out = tmp_path / "out"
    inspector = Inspector("DPUCZDX8G_ISA1_B4096")
    fmt = "svg" if shutil.which("dot") else None
    inspector.inspect(Net(), torch.randn(1, 3, 32, 32), device="cpu", output_dir=str(out), verbose_level=0,
                      image_format=fmt)
    old = visible_tree(out)
    model, x = _SmallNet(), torch.randn(1, 3, 8, 8)
    seen = kill_at_every_step(out, lambda: inspector.inspect(model, x, device="cpu", output_dir=str(out),
                                                             verbose_level=0, image_format="png"),
                              one_torch_thread)
    expect_one_switch(seen)
    new = visible_tree(out)
    stem = "inspect_DPUCZDX8G_ISA1_B4096"
    assert b"_SmallNet" not in old[f"{stem}.txt"] and b"_SmallNet" in new[f"{stem}.txt"]
    assert f"{stem}.svg" not in new and f"{stem}.gv" in new
    assert (f"{stem}.png" in new) == (shutil.which("dot") is not None)
    for label, tree in seen:  # the .gv beside a report always draws that report's model
        if f"{stem}.gv" in tree:
            assert (b"_SmallNet" in tree[f"{stem}.txt"]) == (b"_SmallNet" in tree[f"{stem}.gv"]), label
