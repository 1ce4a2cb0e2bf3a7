"""Every export of the CNN flow killed (SIGKILL) at every step of its commit: readers of
output_dir see the old complete result or the new one, never a mix (quant_info.json with
bias_corr.pth, an xmodel with its dumps, ...), and the next run's sweep leaves no debris
(issue 13; the mechanism: nndct_shared/export_commit.py)."""
from __future__ import annotations

import copy
import io
import json
import zipfile

import torch
import torch.nn.functional as F

import models
from nndct_shared.config import default_config
from helpers.kill_steps import expect_one_switch, kill_at_every_step, one_torch_thread
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.optim.param_file import save_params
from quant_flow import calibrate, plain_config, test_quantizer

CPU = torch.device("cpu")


def _scaled(model, factor: float = 0.75):
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(factor)
    return other


class SigmoidMLP(models.DigitsMLP):
    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.l3(torch.sigmoid(self.l2(F.relu(self.l1(x)))))


def test_kills_while_a_new_quantizer_writes_its_generated_module(digits, tmp_path):
    """Two models of one class name `Net` but other structure: `Net.py` is one unit."""
    out = tmp_path / "out"
    relu_net, sigmoid_net = type("Net", (models.DigitsMLP,), {})(), type("Net", (SigmoidMLP,), {})()
    torch_quantizer("calib", relu_net, digits[0][:4], output_dir=str(out), device=CPU)
    old = (out / "Net.py").read_bytes()
    seen = kill_at_every_step(
        out, lambda: torch_quantizer("calib", sigmoid_net, digits[0][:4], output_dir=str(out), device=CPU),
        one_torch_thread)
    expect_one_switch(seen)
    assert (out / "Net.py").read_bytes() != old and b"Sigmoid" in (out / "Net.py").read_bytes()


def test_kills_during_export_quant_config_with_bias_correction(digits_mlp, digits, tmp_path):
    """quant_info.json and bias_corr.pth (the default config corrects biases) switch together."""
    out = tmp_path / "out"
    calibrate(digits_mlp, digits[0][:100], out)
    second = torch_quantizer("calib", _scaled(digits_mlp, 3.0), digits[0][:100], output_dir=str(out), device=CPU)
    second.quant_model(digits[0][:100])
    old = {name: (out / name).read_bytes() for name in ("quant_info.json", "bias_corr.pth")}
    seen = kill_at_every_step(out, second.export_quant_config, one_torch_thread)
    expect_one_switch(seen)
    assert all((out / name).read_bytes() != data for name, data in old.items())


def _two_test_quantizers(model, digits, tmp_path):
    config = plain_config(tmp_path / "cfg")
    quantizers = []
    for name, variant in (("qa", model), ("qb", _scaled(model))):
        calibrate(variant, digits[0][:100], tmp_path / name, quant_config_file=config)
        q = test_quantizer(variant, digits[2], tmp_path / name, quant_config_file=config)
        q.quant_model(digits[2][:1])
        quantizers.append(q)
    return quantizers


def test_kills_during_export_xmodel_with_dumps(digits_mlp, digits, tmp_path):
    a, b = _two_test_quantizers(digits_mlp, digits, tmp_path)
    out = tmp_path / "export"
    a.export_xmodel(str(out), deploy_check=True)
    a.export_onnx_model(str(out))  # another unit in the same directory: carried along
    seen = kill_at_every_step(out, lambda: b.export_xmodel(str(out), deploy_check=True), one_torch_thread)
    expect_one_switch(seen)
    assert all("DigitsMLP_int.onnx" in tree for _, tree in seen)


def _torchscript_content(tree: dict) -> dict:
    """A TorchScript archive holds a random serialization id (and debug tables that vary with
    it): compare the code, constants and data it holds."""
    def content(data):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {n: archive.read(n) for n in archive.namelist()
                    if not n.endswith((".debug_pkl", "serialization_id"))}
    return {k: content(v) if k.endswith(".pt") and v is not None else v for k, v in tree.items()}


def test_kills_during_the_onnx_and_torchscript_exports(digits_mlp, digits, tmp_path):
    a, b = _two_test_quantizers(digits_mlp, digits, tmp_path)
    out = tmp_path / "export"
    a.export_onnx_model(str(out))
    a.export_torch_script(str(out))
    expect_one_switch(kill_at_every_step(out, lambda: b.export_onnx_model(str(out)), one_torch_thread,
                                          _torchscript_content))
    expect_one_switch(kill_at_every_step(out, lambda: b.export_torch_script(str(out)), one_torch_thread,
                                          _torchscript_content))


def test_kills_while_fast_finetune_saves_its_parameters(digits_mlp, tmp_path):
    """param.pth is written by `save_params` (fast finetune's writer) as a unit of its own."""
    out = tmp_path / "out"
    params = {name: p.detach().clone() for name, p in digits_mlp.named_parameters()}
    save_params(params, out / "param.pth")
    other = {name: 2 * p for name, p in params.items()}
    expect_one_switch(kill_at_every_step(out, lambda: save_params(other, out / "param.pth"), one_torch_thread))
    loaded = torch.load(out / "param.pth", weights_only=True)
    assert all(torch.equal(loaded[name], other[name]) for name in other)


def test_a_calibration_removes_the_result_files_it_does_not_write(digits_mlp, digits, tmp_path):
    """quant_info.json, quant_info_float.json and bias_corr.pth are one unit: a file this
    calibration does not write does not stay beside the new quant_info.json."""
    out = tmp_path / "out"
    data = default_config(8, "CPU").to_dict()
    data["overall_quantize_config"].update({"scale_type": "float", "method": "maxmin",
                                            "calib_statistic_method": "max"})
    (tmp_path / "float.json").write_text(json.dumps(data))
    calibrate(digits_mlp, digits[0][:100], out, quant_config_file=str(tmp_path / "float.json"))
    assert (out / "bias_corr.pth").is_file() and (out / "quant_info_float.json").is_file()
    calibrate(digits_mlp, digits[0][:100], out, quant_config_file=plain_config(tmp_path / "cfg"))
    assert (out / "quant_info.json").is_file() and not (out / "bias_corr.pth").exists()
    assert not (out / "quant_info_float.json").exists()
