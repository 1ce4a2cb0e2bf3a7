"""Speed of the quantized LSTM against the float LSTM, in PyTorch and in Keras.

IMDB-shaped model of the reference example: batch 50, sequence 500, input 32, hidden 100.
Everything is timed in the same run, best of several repeats, and printed as ratios to the
float forward of the same framework. Targets: PyTorch test-mode forward <= 2x float nn.LSTM,
calibration <= 5x (issue 4); Keras test-mode quant_model <= 2x the float Keras LSTM (issue 5).
torch.ao's observed quantizable LSTM is timed as a comparison.

    python benchmarks/lstm.py [--repeats 5] [--batch 50 --steps 500 --input 32 --hidden 100] [--no-keras]
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import torch
from torch import nn

from pytorch_nndct.apis import torch_quantizer
from timing import best_of


class Net(nn.Module):
    def __init__(self, inp: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(inp, hidden, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--no-keras", action="store_true", help="skip the Keras timings")
    a = p.parse_args()
    torch.manual_seed(0)
    model = Net(a.input, a.hidden).eval()
    x = torch.randn(a.batch, a.steps, a.input) * 0.5
    cpu = torch.device("cpu")
    results: dict[str, float] = {}
    with torch.no_grad(), tempfile.TemporaryDirectory() as out:
        results["float nn.LSTM"] = best_of(lambda: model(x), a.repeats)
        calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        results["calib quant_model"] = best_of(lambda: calib.quant_model(x), a.repeats)
        calib.export_quant_config()
        test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        results["test quant_model"] = best_of(lambda: test.quant_model(x), a.repeats)

        qlstm = torch.ao.nn.quantizable.LSTM(a.input, a.hidden, batch_first=True)
        qlstm.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        observed = torch.ao.quantization.prepare(nn.Sequential(qlstm).eval(), inplace=False)
        results["torch.ao quantizable.LSTM (observed)"] = best_of(lambda: observed(x), a.repeats)
    keras_results = {} if a.no_keras else time_keras(model, x.numpy(), a.repeats)

    print(f"shape: batch {a.batch}, steps {a.steps}, input {a.input}, hidden {a.hidden}; "
          f"threads {torch.get_num_threads()}")
    for group, base_name in ((results, "float nn.LSTM"), (keras_results, "float keras LSTM")):
        for name, t in group.items():
            print(f"{name:40s} {t * 1e3:9.1f} ms   {t / group[base_name]:6.2f}x {base_name}")


def time_keras(model: Net, x: np.ndarray, repeats: int) -> dict[str, float]:
    """The same LSTM as a Keras model (same weights), float vs tf_quantizer's quant_model,
    both called eagerly as the quantized model is used."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from tf_nndct.quantization.api import tf_quantizer

    lstm = model.lstm
    layer = keras.layers.LSTM(lstm.hidden_size, return_sequences=True, name="lstm")
    kmodel = keras.Sequential([keras.Input(x.shape[1:]), layer])
    p = {k: v.detach().numpy() for k, v in lstm.state_dict().items()}
    layer.set_weights([p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"] + p["bias_hh_l0"]])
    results = {"float keras LSTM": best_of(lambda: kmodel(x), repeats)}
    with tempfile.TemporaryDirectory() as out:
        calib = tf_quantizer(kmodel, None, "calib", out, bitwidth=16)
        results["keras calib quant_model"] = best_of(lambda: calib.quant_model(x), repeats)
        calib.export_quant_config()
        test = tf_quantizer(kmodel, None, "test", out, bitwidth=16)
        results["keras test quant_model"] = best_of(lambda: test.quant_model(x), repeats)
    return results


if __name__ == "__main__":
    main()
