"""Speed (and memory) of the quantized LSTM against the float LSTM, in PyTorch and in Keras.

Single shape (default: the IMDB-shaped model of the reference example, batch 50, sequence 500,
input 32, hidden 100): float nn.LSTM, calibration and test-mode quant_model, torch.ao's observed
quantizable LSTM, and the Keras float LSTM and quant_models, with ratios to the float forward
of the same framework.

--grid: the shapes of issue 14 (batch-1 streaming, hidden 100..512, stacked and bidirectional),
one table with float nn.LSTM, PyTorch test mode and calibration, and the Keras quant_model of
the same weights, every ratio to float nn.LSTM. Targets: test mode <= 1.0x at batch 1, <= 1.5x
everywhere; calibration <= 3x everywhere; Keras at the same ratios.

--memory: peak resident memory of one forward at batch 1, 20,000 steps, hidden 512, test mode
against float nn.LSTM (each in a fresh process; target: within 2x).

Everything is timed in the same run, the contenders of one shape interleaved (one call of each
per round), best of --repeats. --threads N sets torch.set_num_threads(N), NNDCT_NUM_THREADS=N and
TensorFlow's thread pools before anything runs.

    python benchmarks/lstm.py [--repeats 5] [--batch 50 --steps 500 --input 32 --hidden 100] [--no-keras]
    python benchmarks/lstm.py --grid [--threads 1] [--repeats 5] [--no-keras]
    python benchmarks/lstm.py --memory
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

from timing import best_of, interleaved_best


@dataclass(frozen=True)
class Shape:
    batch: int
    steps: int
    input: int
    hidden: int
    layers: int = 1
    bidirectional: bool = False

    def label(self) -> str:
        return (f"{self.batch:>5} {self.steps:>5} {self.input:>5} {self.hidden:>6}  "
                f"{str(self.layers) + (' bi' if self.bidirectional else ''):<6}")


GRID = (
    Shape(1, 100, 32, 100),
    Shape(1, 100, 32, 128),
    Shape(1, 100, 40, 256),
    Shape(1, 100, 40, 512),
    Shape(1, 100, 40, 256, layers=2),
    Shape(4, 100, 32, 128),
    Shape(8, 200, 64, 512),
    Shape(16, 200, 64, 128, layers=2, bidirectional=True),
    Shape(256, 50, 32, 64),
    Shape(50, 500, 32, 100),
)
TEST_TARGET, TEST_TARGET_BATCH1, CALIB_TARGET = 1.5, 1.0, 3.0


def set_threads(n: int) -> None:
    """One thread count for torch, our loops and TensorFlow (before TensorFlow starts)."""
    import torch

    torch.set_num_threads(n)
    os.environ["NNDCT_NUM_THREADS"] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(n)


def torch_model(shape: Shape, seed: int = 0, kind: str = "lstm"):
    """A float nn.LSTM (kind "lstm") or nn.GRU (kind "gru") stack of the shape, as `model.lstm`."""
    import torch
    from torch import nn

    cls = nn.GRU if kind == "gru" else nn.LSTM

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = cls(shape.input, shape.hidden, num_layers=shape.layers, bidirectional=shape.bidirectional,
                            batch_first=True)

        def forward(self, x):
            return self.lstm(x)[0]

    torch.manual_seed(seed)
    return Net().eval()


def keras_twin(model, shape: Shape):
    """The same LSTM (or GRU) stack as a Keras model with the same weights (a GRU's gates regrouped
    from PyTorch's r, z, n to Keras' z, r, h; reset_after=True, bias = [b_ih; b_hh])."""
    import keras
    from torch import nn

    gru = isinstance(model.lstm, nn.GRU)
    p = {k: v.detach().numpy() for k, v in model.lstm.state_dict().items()}
    H = shape.hidden

    def gates(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[H:2 * H], a[:H], a[2 * H:]]) if gru else a

    def weights(layer: int, suffix: str) -> list[np.ndarray]:
        w_ih, w_hh = p[f"weight_ih_l{layer}{suffix}"], p[f"weight_hh_l{layer}{suffix}"]
        b_ih, b_hh = p[f"bias_ih_l{layer}{suffix}"], p[f"bias_hh_l{layer}{suffix}"]
        if gru:
            return [gates(w_ih).T, gates(w_hh).T, np.stack([gates(b_ih), gates(b_hh)])]
        return [w_ih.T, w_hh.T, b_ih + b_hh]

    inputs = keras.Input((shape.steps, shape.input))
    x = inputs
    for layer in range(shape.layers):
        lstm = (keras.layers.GRU if gru else keras.layers.LSTM)(shape.hidden, return_sequences=True)
        if shape.bidirectional:
            wrapper = keras.layers.Bidirectional(lstm, name=f"bi{layer}")
            x = wrapper(x)
            wrapper.forward_layer.set_weights(weights(layer, ""))
            wrapper.backward_layer.set_weights(weights(layer, "_reverse"))
        else:
            x = lstm(x)
            lstm.set_weights(weights(layer, ""))
    return keras.Model(inputs, x)


def time_shape(shape: Shape, repeats: int, keras_too: bool, kind: str = "lstm") -> dict[str, float]:
    """Best-of times of every contender for one shape, interleaved."""
    import torch

    from pytorch_nndct.apis import torch_quantizer

    model = torch_model(shape, kind=kind)
    x = torch.randn(shape.batch, shape.steps, shape.input) * 0.5
    cpu = torch.device("cpu")
    fns = {}
    with torch.no_grad(), tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as kout:
        calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        calib.quant_model(x)
        calib.export_quant_config()
        test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        fns["float"] = lambda: model(x)
        fns["test"] = lambda: test.quant_model(x)
        fns["calib"] = lambda: calib.quant_model(x)
        if keras_too:
            from tf_nndct.quantization.api import tf_quantizer

            kmodel = keras_twin(model, shape)
            xk = x.numpy()
            kcalib = tf_quantizer(kmodel, None, "calib", kout, bitwidth=16)
            kcalib.quant_model(xk)
            kcalib.export_quant_config()
            ktest = tf_quantizer(kmodel, None, "test", kout, bitwidth=16)
            fns["keras test"] = lambda: ktest.quant_model(xk)
            fns["keras calib"] = lambda: kcalib.quant_model(xk)
        return interleaved_best(fns, repeats)


def run_grid(repeats: int, keras_too: bool, kind: str = "lstm") -> None:
    """The grid table for nn.LSTM (kind "lstm") or nn.GRU (kind "gru", benchmarks/gru.py --grid)."""
    import torch

    float_name = "nn.GRU" if kind == "gru" else "nn.LSTM"
    cols = ["test", "calib"] + (["keras test", "keras calib"] if keras_too else [])
    head = f"batch steps input hidden  layers  float {float_name:<10}" + "  ".join(f"{c:>16}" for c in cols)
    print(f"ratios to float {float_name} (torch {torch.__version__}); threads {torch.get_num_threads()} "
          f"(NNDCT_NUM_THREADS={os.environ.get('NNDCT_NUM_THREADS', 'unset')}); best of {repeats}, interleaved")
    print(head)
    print("-" * len(head))
    worst = {c: (0.0, None) for c in cols}
    misses = []
    for shape in GRID:
        t = time_shape(shape, repeats, keras_too, kind)
        cells = []
        for c in cols:
            ratio = t[c] / t["float"]
            cells.append(f"{t[c] * 1e3:8.2f} {ratio:5.2f}x")
            if ratio > worst[c][0]:
                worst[c] = (ratio, shape)
            target = CALIB_TARGET if "calib" in c else (TEST_TARGET_BATCH1 if shape.batch == 1 else TEST_TARGET)
            if ratio > target:
                misses.append(f"{c} at [{shape.label().strip()}]: {ratio:.2f}x > {target}x")
        print(f"{shape.label()}  {t['float'] * 1e3:10.2f} ms   " + "  ".join(f"{s:>16}" for s in cells), flush=True)
    print("worst: " + "; ".join(f"{c} {r:.2f}x at [{s.label().strip()}]" for c, (r, s) in worst.items()))
    print("targets (test <= 1.0x at batch 1, <= 1.5x elsewhere; calibration <= 3x): "
          + ("all met" if not misses else "missed: " + "; ".join(misses)))


# ------------------------------------------------------------------------------ memory
MEMORY_SHAPE = Shape(1, 20000, 40, 512)


def _rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB (Linux /proc)."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def memory_child(which: str) -> None:
    """Prints 'base peak' in MiB around one forward of `which` (float or test)."""
    import gc

    import torch

    from pytorch_nndct.apis import torch_quantizer

    s = MEMORY_SHAPE
    model = torch_model(s)
    x = torch.randn(s.batch, s.steps, s.input) * 0.5
    with torch.no_grad(), tempfile.TemporaryDirectory() as out:
        if which == "test":
            calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out, device=torch.device("cpu"))
            calib.quant_model(x[:, :200])
            calib.export_quant_config()
            test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=out, device=torch.device("cpu"))
            test.quant_model(x[:, :10])
            fn = test.quant_model
        else:
            model(x[:, :10])
            fn = model
        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak (VmHWM) to the current resident size
        base = _rss_mib()[0]
        y = fn(x)
        peak = _rss_mib()[1]
        del y
    print(f"{base:.1f} {peak:.1f}")


def run_memory() -> None:
    if not os.path.exists("/proc/self/clear_refs"):
        raise SystemExit("--memory needs Linux (/proc/self/clear_refs and VmHWM)")
    s = MEMORY_SHAPE
    print(f"peak resident memory of one forward: batch {s.batch}, {s.steps} steps, input {s.input}, "
          f"hidden {s.hidden} (fresh process each)")
    res = {}
    for which in ("float", "test"):
        out = subprocess.run([sys.executable, __file__, "--memory-child", which], capture_output=True, text=True,
                             check=True).stdout.split()
        base, peak = float(out[-2]), float(out[-1])
        res[which] = (base, peak)
        print(f"{'float nn.LSTM' if which == 'float' else 'test mode quant_model':24s} before {base:8.1f} MiB  "
              f"peak {peak:8.1f} MiB  (+{peak - base:7.1f} MiB)")
    (fb, fp), (tb, tp) = res["float"], res["test"]
    print(f"test / float: peak {tp / fp:.2f}x, growth during the forward {(tp - tb) / max(fp - fb, 1e-9):.2f}x "
          "(target: within 2x)")


# ------------------------------------------------------------------------------ single shape
def run_single(a) -> None:
    import torch
    from torch import nn

    from pytorch_nndct.apis import torch_quantizer

    shape = Shape(a.batch, a.steps, a.input, a.hidden)
    model = torch_model(shape)
    x = torch.randn(a.batch, a.steps, a.input) * 0.5
    cpu = torch.device("cpu")
    with torch.no_grad(), tempfile.TemporaryDirectory() as out:
        calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        calib.quant_model(x)
        calib.export_quant_config()
        test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=out, device=cpu)
        qlstm = torch.ao.nn.quantizable.LSTM(a.input, a.hidden, batch_first=True)
        qlstm.qconfig = torch.ao.quantization.get_default_qconfig("x86")
        observed = torch.ao.quantization.prepare(nn.Sequential(qlstm).eval(), inplace=False)
        results = interleaved_best({
            "float nn.LSTM": lambda: model(x),
            "calib quant_model": lambda: calib.quant_model(x),
            "test quant_model": lambda: test.quant_model(x),
            "torch.ao quantizable.LSTM (observed)": lambda: observed(x),
        }, a.repeats)
    keras_results = {} if a.no_keras else time_keras_single(model, shape, x.numpy(), a.repeats)
    print(f"shape: batch {a.batch}, steps {a.steps}, input {a.input}, hidden {a.hidden}; "
          f"threads {torch.get_num_threads()}")
    for group, base_name in ((results, "float nn.LSTM"), (keras_results, "float keras LSTM")):
        for name, t in group.items():
            print(f"{name:40s} {t * 1e3:9.1f} ms   {t / group[base_name]:6.2f}x {base_name}")


def time_keras_single(model, shape: Shape, x: np.ndarray, repeats: int) -> dict[str, float]:
    """The float Keras LSTM vs tf_quantizer's quant_models, called eagerly as the quantized
    model is used."""
    from tf_nndct.quantization.api import tf_quantizer

    kmodel = keras_twin(model, shape)
    with tempfile.TemporaryDirectory() as out:
        calib = tf_quantizer(kmodel, None, "calib", out, bitwidth=16)
        calib.quant_model(x)
        calib.export_quant_config()
        test = tf_quantizer(kmodel, None, "test", out, bitwidth=16)
        return {"float keras LSTM": best_of(lambda: kmodel(x), repeats),
                **interleaved_best({"keras calib quant_model": lambda: calib.quant_model(x),
                                    "keras test quant_model": lambda: test.quant_model(x)}, repeats)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--no-keras", action="store_true", help="skip the Keras timings")
    p.add_argument("--grid", action="store_true", help="time the grid of shapes and print one table")
    p.add_argument("--threads", type=int, default=None, help="threads for torch, our loops and TensorFlow")
    p.add_argument("--memory", action="store_true", help="peak memory of a 20,000-step forward")
    p.add_argument("--memory-child", choices=("float", "test"), help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if a.threads is not None:
        set_threads(a.threads)
    if a.memory_child:
        memory_child(a.memory_child)
    elif a.memory:
        run_memory()
    elif a.grid:
        run_grid(a.repeats, not a.no_keras)
    else:
        run_single(a)


if __name__ == "__main__":
    main()
