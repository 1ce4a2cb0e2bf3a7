"""The toy FFN project's calls (seeds/toy-ffn-project-README.md, vai_q_pytorch_quant.py), as is."""
from __future__ import annotations

import json
from copy import deepcopy

import torch
import torch.nn.functional as F
from torch import nn

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
    # the reference's layout for this model: 6 params, and 4 outputs (input, two relus, l3)
    assert list(info["param"]) == [f"FFN::l{i}.{r}" for i in (1, 2, 3) for r in ("weight", "bias")]
    assert list(info["output"]) == ["FFN::input_0", "FFN::FFN/relu", "FFN::FFN/relu_1", "FFN::FFN/Linear[l3]/l3"]
    assert (out / "FFN.py").is_file() and (out / "FFN_int.xmodel").is_file()
    assert (out / "deploy_check_data_int" / "FFN" / "FFN__l1_weight_fix.bin").is_file()
    # the legacy module-level export does the same
    (out / "FFN_int.xmodel").unlink()
    dump_xmodel("quantize_result")
    assert (out / "FFN_int.xmodel").is_file()
