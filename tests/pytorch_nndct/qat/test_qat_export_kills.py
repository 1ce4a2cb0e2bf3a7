"""The QAT exports killed (SIGKILL) at every step of their commit (issue 13): `to_deployable`
commits quant_info.json, deployable.pth and `<Model>.py` as one unit, `export_xmodel` into the
same directory commits the xmodel and its dumps with the quant_info.json and deployable.pth it
was made from; readers see the old complete result or the new one, never a mix, and the sweep
leaves no debris. Also: `deployable_model` reads its two files from one version, and a class
name that is code stays text. (The mechanism: nndct_shared/export_commit.py.)"""
from __future__ import annotations

import ast

import torch
import torch.nn.functional as F

import qat_models
from helpers.kill_steps import expect_one_switch, kill_at_every_step, one_torch_thread
from helpers.output_tree import store_debris, visible_tree
from pytorch_nndct import QatProcessor
from pytorch_nndct.qat import processor as qat_processor

XMODEL = "ResNetlet_int.xmodel"
DUMPS = "deploy_check_data_int/ResNetlet"


def _trained(processor: QatProcessor, x: torch.Tensor, scale: float = 1.0):
    """A trainable model of `processor` after one forward (which sets its thresholds); `scale`
    multiplies the fc weights first, so that two of them deploy different files."""
    model = processor.trainable_model()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                p.mul_(scale)
    model.train()
    F.cross_entropy(model(x[:64]), torch.zeros(64, dtype=torch.long)).backward()
    return model.eval()


def _deployment(float_model, x, out, scale):
    """A processor whose deployable model (of the fc weights times `scale`) is in `out`, run on
    a batch of 1 so that it can export its xmodel."""
    processor = QatProcessor(float_model, (x[:1],), bitwidth=8, device="cpu")
    deployable = processor.to_deployable(_trained(processor, x, scale), str(out))
    with torch.no_grad():
        deployable(x[:1])
    return processor


def test_kills_during_to_deployable(float_model, digits_data, tmp_path):
    """A new deployment replaces quant_info.json and deployable.pth at once, and the xmodel and
    dumps of the earlier deployment go with them (they belong to the old fix positions)."""
    x = digits_data[0]
    out = tmp_path / "out"
    _deployment(float_model, x, out, 1.0).export_xmodel(str(out), deploy_check=True)
    before = visible_tree(out)
    assert {"quant_info.json", "deployable.pth", "ResNetlet.py", XMODEL, DUMPS} <= set(before)
    second = QatProcessor(float_model, (x[:1],), bitwidth=8, device="cpu")
    trained = _trained(second, x, 0.5)
    seen = kill_at_every_step(out, lambda: second.to_deployable(trained, str(out)), one_torch_thread)
    expect_one_switch(seen)
    after = visible_tree(out)
    assert after["quant_info.json"] != before["quant_info.json"]
    assert after["deployable.pth"] != before["deployable.pth"]
    assert XMODEL not in after and not any(name.startswith("deploy_check_data_int/") for name in after)


def test_kills_during_export_xmodel_into_the_deployment_directory(float_model, digits_data, tmp_path):
    """Deployment A, then B into the same directory, then A exports its xmodel there: the
    xmodel, its dumps and A's quant_info.json and deployable.pth appear together."""
    x = digits_data[0]
    out = tmp_path / "out"
    first = _deployment(float_model, x, out, 1.0)
    files_a = {name: (out / name).read_bytes() for name in ("quant_info.json", "deployable.pth")}
    _deployment(float_model, x, out, 0.5)
    files_b = {name: (out / name).read_bytes() for name in files_a}
    assert files_a != files_b
    seen = kill_at_every_step(out, lambda: first.export_xmodel(str(out), deploy_check=True), one_torch_thread)
    expect_one_switch(seen)
    for label, tree in seen:
        pair = {name: tree[name] for name in files_a}
        assert pair == (files_a if XMODEL in tree else files_b), label
        assert (XMODEL in tree) == (f"{DUMPS}/ResNetlet__nndct_dense_8.bin" in tree), label
    assert XMODEL in visible_tree(out)


def test_deployable_model_reads_its_two_files_from_one_version(float_model, digits_data, tmp_path, monkeypatch):
    """Another deployment committed between reading deployable.pth and quant_info.json (here:
    while the weights are loaded) does not mix into the model being rebuilt."""
    x = digits_data[0]
    out = tmp_path / "out"
    first = _deployment(float_model, x, out, 1.0)
    with torch.no_grad():
        want = first._deploy_quantizer.quant_model(x[:32])
    other = QatProcessor(float_model, (x[:1],), bitwidth=8, device="cpu")
    trained = _trained(other, x, 0.5)
    real_load = qat_processor.load_deployable

    def load_then_commit_another(model, state):
        real_load(model, state)
        other.to_deployable(trained, str(out))  # a concurrent run's commit, between the two reads

    monkeypatch.setattr(qat_processor, "load_deployable", load_then_commit_another)
    rebuilt = QatProcessor(float_model, (x[:1],), bitwidth=8, device="cpu").deployable_model(str(out))
    with torch.no_grad():
        assert torch.equal(rebuilt(x[:32]), want)
        assert not torch.equal(other._deploy_quantizer.quant_model(x[:32]), want)


def test_a_class_name_cannot_run_code_through_qat(float_model, digits_data, tmp_path):
    """Issue 13, item 1 for QAT: the trainable model and the deployable model are built from
    generated source in which the class name (part of every node name) is escaped."""
    marker = tmp_path / "ran"
    cls = type(f"Net\nopen({str(marker)!r}, 'w').write('x')\n#", (qat_models.ResNetlet,), {})
    model = cls()
    model.load_state_dict(float_model.state_dict())
    x = digits_data[0]
    processor = QatProcessor(model.eval(), (x[:1],), bitwidth=8, device="cpu")
    out = tmp_path / "out"
    deployable = processor.to_deployable(_trained(processor, x), str(out))
    with torch.no_grad():
        deployable(x[:1])
    processor.export_xmodel(str(out))
    assert not marker.exists()
    (module,) = [name for name in visible_tree(out) if name.endswith(".py")]
    source = (out / module).read_text(encoding="utf-8")
    assert [type(node).__name__ for node in ast.parse(source).body] == ["Import", "Import", "Import", "ClassDef"]
    assert "open(\\x27" in source
    assert store_debris(out) == []
