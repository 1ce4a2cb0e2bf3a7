"""PyTorch models and their Keras twins with the same weights, for the cross-framework tests.

Each pair computes the same function: the Keras model is built from layers named like the
PyTorch model's attributes (so parameter names agree: `<Model>::<name>.weight`), and its
weights are the PyTorch ones moved to Keras layouts by the converters below (conv `[O, I/g, *K]`
-> `[*K, I/g, O]`, depthwise `[C*m, 1, *K]` -> `[*K, C, m]`, transposed conv `[I, O, kh, kw]` ->
`[kh, kw, O, I]`, linear `[out, in]` -> `[in, out]` with the rows of a flattened NCHW map put in
NHWC order). The PyTorch weights are seeded random values, BatchNorm statistics non-trivial.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nndct_shared.quant_info_v3 import read_record

L = keras.layers


def digits_images(count: int, start: int = 0) -> np.ndarray:
    """sklearn digits scaled to [0, 1], NHWC float32 (real images: fix positions as in use)."""
    from sklearn.datasets import load_digits

    images = load_digits().images[start:start + count] / 16.0
    return images[..., None].astype(np.float32)


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))


# --- weight converters -----------------------------------------------------------------------------


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def conv_weights(m: nn.Module) -> list[np.ndarray]:
    n = m.weight.dim() - 2
    w = _np(m.weight).transpose(*range(2, 2 + n), 1, 0)
    return [w] + ([_np(m.bias)] if m.bias is not None else [])


def depthwise_weights(m: nn.Conv2d) -> list[np.ndarray]:
    c = m.in_channels
    w = _np(m.weight)
    k = w.reshape((c, w.shape[0] // c) + w.shape[2:]).transpose(*range(2, w.ndim), 0, 1)
    return [k] + ([_np(m.bias)] if m.bias is not None else [])


def transpose_weights(m: nn.ConvTranspose2d) -> list[np.ndarray]:
    return [_np(m.weight).transpose(2, 3, 1, 0)] + ([_np(m.bias)] if m.bias is not None else [])


def dense_weights(m: nn.Linear) -> list[np.ndarray]:
    return [_np(m.weight).T] + ([_np(m.bias)] if m.bias is not None else [])


def bn_weights(m: nn.modules.batchnorm._BatchNorm) -> list[np.ndarray]:
    return [_np(m.weight), _np(m.bias), _np(m.running_mean), _np(m.running_var)]


def randomize_bn(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.6 - 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.4 - 0.2)


# --- 1. the CNN example's network (conv + BN + relu, depthwise + relu, pool, flatten, dense) -----

CHECKPOINT = Path(__file__).resolve().parents[3] / "examples" / "cnn" / "checkpoints" / "digits_net.pth"


class DigitsNet(nn.Module):
    """The example's `digits_net.DigitsNet` (same state_dict keys) with module activations and
    nn.Flatten, so that its graph has the ops the Keras model's has (flatten, not reshape)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.dw(x)))
        return self.fc(self.flat(x))


def trained_digits_net() -> DigitsNet:
    """The CNN example's trained network (its shipped checkpoint; the same state_dict keys)."""
    model = DigitsNet()
    model.load_state_dict(torch.load(CHECKPOINT, map_location="cpu", weights_only=True))
    return model.eval()


def keras_example():
    """examples/cnn/tensorflow/model.py (the Keras CNN example's model and data), by path."""
    import importlib.util

    import sys

    path = CHECKPOINT.parents[1] / "tensorflow" / "model.py"
    spec = importlib.util.spec_from_file_location("keras_cnn_example_model", path)
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(module)  # puts examples/cnn on sys.path for its digits_data import
    finally:
        sys.path[:] = saved
    return module


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The CNN examples' split, NHWC: x_train, y_train, x_test, y_test."""
    example = keras_example()
    return (*example.digits("train"), *example.digits("test"))


def digits_net_keras(t: DigitsNet) -> keras.Model:
    """The Keras CNN example's model with `t`'s weights (its documented conversion)."""
    example = keras_example()
    model = example.build_model()
    for name, weights in example.keras_weights_from_torch(t.state_dict()).items():
        model.get_layer(name).set_weights(weights)
    return model


# --- 2. residual 2-D net: relu6, separable conv + BN, add, leaky relu, transposed conv, pools ---


class Separable(nn.Module):
    def __init__(self, c: int, out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.pointwise = nn.Conv2d(c, out, 1)


class ResNet2d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.relu6 = nn.ReLU6()
        self.sep = Separable(8, 8)
        self.bn = nn.BatchNorm2d(8, eps=1e-3)
        self.short = nn.Conv2d(8, 8, 1)
        self.leaky = nn.LeakyReLU(0.2)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.avg = nn.AvgPool2d(4)
        self.down = nn.Conv2d(8, 6, 2, stride=2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = self.relu6(self.conv(x))
        a = self.bn(self.sep.pointwise(self.sep.depthwise(x)))
        b = self.short(x)
        x = self.leaky(a + b)
        u = self.avg(F.relu(self.up(x)))
        d = self.down(x)
        x = torch.cat([u, d], dim=1)
        return self.fc(self.flat(self.gap(x)))


def resnet2d_keras(t: ResNet2d) -> keras.Model:
    inp = keras.Input((8, 8, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = L.ReLU(max_value=6, name="relu6")(x)
    a = L.SeparableConv2D(8, 3, padding="same", name="sep")(x)
    a = L.BatchNormalization(epsilon=1e-3, name="bn")(a)
    b = L.Conv2D(8, 1, name="short")(x)
    x = L.Add(name="add")([a, b])
    x = L.LeakyReLU(0.2, name="leaky")(x)
    u = L.Conv2DTranspose(6, 2, strides=2, activation="relu", name="up")(x)
    u = L.AveragePooling2D(4, name="avg")(u)
    d = L.Conv2D(6, 2, strides=2, name="down")(x)
    x = L.Concatenate(name="cat")([u, d])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, name="fc")(x)
    model = keras.Model(inp, x, name="ResNet2d")
    model.get_layer("conv").set_weights(conv_weights(t.conv))
    dw = depthwise_weights(t.sep.depthwise)[0]
    pw = conv_weights(t.sep.pointwise)
    model.get_layer("sep").set_weights([dw, pw[0], pw[1]])
    model.get_layer("bn").set_weights(bn_weights(t.bn))
    model.get_layer("short").set_weights(conv_weights(t.short))
    model.get_layer("up").set_weights(transpose_weights(t.up))
    model.get_layer("down").set_weights(conv_weights(t.down))
    model.get_layer("fc").set_weights(dense_weights(t.fc))
    return model


# --- 3. 1-D net: conv1d stride 2, standalone BN, 'same' pool (ceil mode), Dense on a sequence -----


class Net1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 12, 3, stride=2)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(12, eps=1e-3)
        self.pool = nn.MaxPool1d(2, ceil_mode=True)
        self.proj = nn.Conv1d(12, 6, 1)
        self.gmp = nn.AdaptiveMaxPool1d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = self.pool(self.bn(self.relu(self.conv(x))))
        x = self.gmp(F.relu(self.proj(x)))
        return self.fc(self.flat(x))


def net1d_keras(t: Net1d) -> keras.Model:
    inp = keras.Input((16, 8), name="sequence")
    x = L.Conv1D(12, 3, strides=2, name="conv")(inp)
    x = L.ReLU(name="relu")(x)
    x = L.BatchNormalization(epsilon=1e-3, name="bn")(x)
    x = L.MaxPooling1D(2, padding="same", name="pool")(x)
    x = L.Dense(6, activation="relu", name="proj")(x)
    x = L.GlobalMaxPooling1D(name="gmp")(x)
    x = L.Dense(4, name="fc")(x)
    model = keras.Model(inp, x, name="Net1d")
    model.get_layer("conv").set_weights(conv_weights(t.conv))
    model.get_layer("bn").set_weights(bn_weights(t.bn))
    w = _np(t.proj.weight)[:, :, 0]
    model.get_layer("proj").set_weights([w.T, _np(t.proj.bias)])
    model.get_layer("fc").set_weights(dense_weights(t.fc))
    return model


# --- 4. padded net: ZeroPadding2D, and 'same' convs that pad one more after than before ----------


class Padded(nn.Module):
    """Keras' asymmetric 'same' (a stride 2 on even sizes, an even kernel) as torch writes it: an
    explicit F.pad before a conv without padding; ZeroPadding2D as nn.ZeroPad2d."""

    def __init__(self) -> None:
        super().__init__()
        self.zero = nn.ZeroPad2d((1, 0, 0, 1))                  # (left, right, top, bottom): 9x9
        self.stem = nn.Conv2d(1, 8, 2)                          # -> 8x8
        self.down = nn.Conv2d(8, 8, 3, stride=2)                # 'same' on 8x8 pads (0, 1): -> 4x4
        self.dw = nn.Conv2d(8, 8, 3, stride=2, groups=8)        # 'same' on 4x4 pads (0, 1): -> 2x2
        self.even = nn.Conv2d(8, 6, 2)                          # kernel 2 'same' pads (0, 1): 2x2
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = F.relu(self.stem(self.zero(x)))
        x = F.relu(self.down(F.pad(x, (0, 1, 0, 1))))
        x = F.relu(self.dw(F.pad(x, (0, 1, 0, 1))))
        x = F.relu(self.even(F.pad(x, (0, 1, 0, 1))))
        return self.fc(self.flat(self.gap(x)))


def padded_keras(t: Padded) -> keras.Model:
    inp = keras.Input((8, 8, 1), name="image")
    x = L.ZeroPadding2D(((0, 1), (1, 0)), name="zero")(inp)
    x = L.Conv2D(8, 2, activation="relu", name="stem")(x)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="down")(x)
    x = L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu", name="dw")(x)
    x = L.Conv2D(6, 2, padding="same", activation="relu", name="even")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(10, name="fc")(x)
    model = keras.Model(inp, x, name="Padded")
    for name in ("stem", "down", "even"):
        model.get_layer(name).set_weights(conv_weights(getattr(t, name)))
    model.get_layer("dw").set_weights(depthwise_weights(t.dw))
    model.get_layer("fc").set_weights(dense_weights(t.fc))
    return model


def sequences(count: int, seed: int = 0) -> np.ndarray:
    """Sequences of digits rows (real data): [count, 16, 8] (two images, row by row)."""
    images = digits_images(2 * count, start=seed)[..., 0]
    return np.concatenate([images[:count], images[count:]], axis=1).astype(np.float32)


def read_quant_info(path: Path):
    """The tables of a quant_info.json, in either layout (the CNN flow's 3.x file, the recurrent
    flow's single-pair one): `.param` / `.output` / `.input` as {name: (bit_width, fix_pos)}."""
    return read_record(path).info


def nndct_name(quantizer, traced: str) -> str:
    """The session's name (the reference 3.x `<Model>::nndct_<op>_<index>`) of the node a
    front end captured as `traced` (quant_info.json, the runtime and the exports use it)."""
    return {old: new for new, old in quantizer.captured.traced_names.items()}[traced]
