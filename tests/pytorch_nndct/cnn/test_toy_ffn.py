"""The toy FFN project's calls (seeds/toy-ffn-project-README.md, vai_q_pytorch_quant.py), as is."""
from __future__ import annotations

import json
from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.messages import QuantInfoError
from nndct_shared.quant_info import QuantInfo, write_quant_info
from nndct_shared.quant_info_v3 import read_record
from pytorch_nndct.apis import dump_xmodel, torch_quantizer


class FFN(nn.Module):
    def __init__(self, input_size):
        super().__init__()
        self.l1 = nn.Linear(input_size, input_size * 3)
        self.l2 = nn.Linear(input_size * 3, input_size * 2)
        self.l3 = nn.Linear(input_size * 2, 1)

    def forward(self, inputs):
        o1 = F.relu(self.l1(inputs))
        o2 = F.relu(self.l2(o1))
        o3 = self.l3(o2)
        return o3


def test_toy_ffn_script_calls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = FFN(2).eval()
    data = torch.randn(256, 2)
    for quant_mode, batch_size in (("calib", 64), ("test", 1)):
        rand_input = torch.randn([batch_size, 2])
        quantizer = torch_quantizer(quant_mode, module=deepcopy(model), input_args=rand_input, bitwidth=8,
                                    mix_bit=False, qat_proc=False, device=torch.device("cpu"))
        quant_model = quantizer.quant_model
        with torch.no_grad():
            for i in range(0, len(data) if quant_mode == "calib" else 1, batch_size):
                quant_model(data[i:i + batch_size])
        if quant_mode == "calib":
            quantizer.export_quant_config()
    quantizer.export_xmodel(deploy_check=True)
    out = tmp_path / "quantize_result"
    info = json.loads((out / "quant_info.json").read_text())
    # the reference 3.x layout for this model: 6 params, and 4 outputs (input, two relus, l3)
    assert list(info["param"]) == [f"FFN::l{i}.{r}" for i in (1, 2, 3) for r in ("weight", "bias")]
    assert list(info["output"]) == ["FFN::nndct_input_0", "FFN::nndct_relu_2", "FFN::nndct_relu_4",
                                    "FFN::nndct_dense_5"]
    assert all(len(v) == 1 and len(v[0]) == 2 for v in info["output"].values())  # [[bit_width, fix]]
    assert (info["fast_finetuned"], info["bias_corrected"]) == (False, True)
    assert (out / "FFN.py").is_file() and (out / "FFN_int.xmodel").is_file()
    assert (out / "deploy_check_data_int" / "FFN" / "FFN__l1_weight_fix.bin").is_file()
    assert (out / "deploy_check_data_int" / "FFN" / "FFN__nndct_relu_2_fix.bin").is_file()
    # the generated module names each node as the reference 3.x does: traced name(nndct name)
    source = (out / "FFN.py").read_text()
    assert "#FFN::FFN/Linear[l1]/l1(FFN::nndct_dense_1)" in source
    assert "#FFN::input_0(FFN::nndct_input_0)" in source
    # the legacy module-level export does the same
    (out / "FFN_int.xmodel").unlink()
    dump_xmodel("quantize_result")
    assert (out / "FFN_int.xmodel").is_file()


def test_toy_ffn_fast_finetune_branch(tmp_path, monkeypatch):
    """The script's `--fast_finetune` branch: a DataLoader of dict batches, an eval-loss function
    with a loss module as run_fn, then load_ft_param() in test mode."""
    from torch.utils.data import DataLoader, Dataset

    class Pairs(Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"features": self.x[i], "targets": self.y[i]}

    def eval_loss(model, valid_loader, loss_fn):  # the script's run_fn, as written there
        model.eval()
        epoch_loss = 0
        for batch in valid_loader:
            epoch_loss += loss_fn(model(batch["features"]), batch["targets"]).item()
        return epoch_loss / len(valid_loader)

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = FFN(2).eval()
    x = torch.randn(512, 2)
    y = (x[:, :1] * 0.7 - x[:, 1:] * 0.2).relu()
    ft_loader = DataLoader(Pairs(x, y), batch_size=64)
    quantizer = torch_quantizer("calib", module=deepcopy(model), input_args=torch.randn([64, 2]), bitwidth=8,
                                mix_bit=False, qat_proc=False, device=torch.device("cpu"))
    results = quantizer.fast_finetune(eval_loss, (quantizer.quant_model, ft_loader, nn.MSELoss()))
    assert [r.node for r in results] == ["FFN::nndct_dense_1", "FFN::nndct_dense_3", "FFN::nndct_dense_5"]
    quantizer.export_quant_config()
    assert (tmp_path / "quantize_result" / "param.pth").is_file()
    tester = torch_quantizer("test", module=deepcopy(model), input_args=torch.randn([1, 2]), bitwidth=8,
                             mix_bit=False, qat_proc=False, device=torch.device("cpu"))
    tester.load_ft_param()
    tuned = {name: value for name, value in quantizer.quant_model.state_dict().items()}
    for name, value in tester.quant_model.state_dict().items():
        assert torch.equal(value, tuned[name]), name  # the finetuned weights, not the float ones
    from pytorch_nndct.optim.layer_data import weighted_modules

    traced = tester.captured.traced_names
    moved = [m.node_name for m in weighted_modules(tester.quant_model)
             if not torch.equal(m.weight, getattr(model, traced[m.node_name].rsplit("/", 1)[-1]).weight)]
    assert moved  # finetuning changed at least one layer's weights
    with torch.no_grad():
        tester.quant_model(x[:1])
    tester.export_xmodel(deploy_check=True)
    assert (tmp_path / "quantize_result" / "FFN_int.xmodel").is_file()


def _calibrated(tmp_path, model):
    data = torch.randn(256, 2)
    quantizer = torch_quantizer("calib", module=deepcopy(model), input_args=torch.randn([64, 2]), bitwidth=8,
                                device=torch.device("cpu"), output_dir=str(tmp_path))
    with torch.no_grad():
        for i in range(0, len(data), 64):
            quantizer.quant_model(data[i:i + 64])
    quantizer.export_quant_config()
    return quantizer


def test_single_pair_quant_info_with_traced_names_loads(tmp_path):
    """quant_info.json as the toy FFN project's release wrote it (1.x: one [bit_width, fix] pair
    per entry, TorchScript-traced names such as FFN::FFN/input.2), and as this project wrote it
    before the 3.x format (its own traced names): test mode reads both, onto the same tensors."""
    torch.manual_seed(0)
    model = FFN(2).eval()
    calib = _calibrated(tmp_path, model)
    record = read_record(tmp_path / "quant_info.json")
    expected = {**record.info.param, **record.info.output}
    old_names = {"FFN::nndct_input_0": "FFN::input_0", "FFN::nndct_relu_2": "FFN::FFN/input.2",
                 "FFN::nndct_relu_4": "FFN::FFN/input.4", "FFN::nndct_dense_5": "FFN::FFN/Linear[l3]/20"}
    ours = calib.captured.traced_names
    for names in (old_names, ours):
        write_quant_info(QuantInfo(param=dict(record.info.param),
                                   output={names[k]: v for k, v in record.info.output.items()}),
                         tmp_path / "quant_info.json")
        text = (tmp_path / "quant_info.json").read_text()
        assert '"FFN::l1.weight":[8,' in text and "fast_finetuned" not in text
        tester = torch_quantizer("test", module=deepcopy(model), input_args=torch.randn([1, 2]), bitwidth=8,
                                 device=torch.device("cpu"), output_dir=str(tmp_path))
        assert tester.runtime.fix_pos == {name: fp for name, (_, fp) in expected.items()}
    assert ours["FFN::nndct_relu_2"] == "FFN::FFN/relu"  # traced by torch.fx here
    # a name that matches nothing (another scope) is reported, with both sides' names
    write_quant_info(QuantInfo(param=dict(record.info.param),
                               output={old_names[k].replace("FFN::FFN/input", "FFN::Other/input"): v
                                       for k, v in record.info.output.items()}), tmp_path / "quant_info.json")
    with pytest.raises(QuantInfoError, match="CALIB_RESULT_MISMATCH") as err:
        torch_quantizer("test", module=deepcopy(model), input_args=torch.randn([1, 2]), bitwidth=8,
                        device=torch.device("cpu"), output_dir=str(tmp_path))
    assert "'FFN::nndct_relu_2'" in str(err.value) and "'FFN::Other/input.2'" in str(err.value)
