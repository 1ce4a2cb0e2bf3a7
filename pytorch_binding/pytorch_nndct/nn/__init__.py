"""Quantized replacements of PyTorch modules, the QuantStub/DeQuantStub markers, and the
modules of a converted CNN model (`py_nndct.nn.Linear`, ... as `<Model>.py` uses them)."""
from __future__ import annotations

from .cnn_modules import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    Add,
    AvgPool1d,
    AvgPool2d,
    Cat,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    Custom,
    Flatten,
    Hardswish,
    Input,
    LeakyReLU,
    Linear,
    MaxPool1d,
    MaxPool2d,
    Mean,
    Mul,
    NodeModule,
    ReLU,
    ReLU6,
    Reshape,
    Scale,
    Sigmoid,
    Softmax,
    Sub,
    Tanh,
)
from .stubs import DeQuantStub, QuantStub

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Add", "AvgPool1d", "AvgPool2d", "Cat", "Conv1d",
    "Conv2d", "ConvTranspose2d", "Custom", "DeQuantStub", "Flatten", "Hardswish", "Input",
    "LeakyReLU", "Linear", "MaxPool1d", "MaxPool2d", "Mean", "Mul", "NodeModule", "QuantStub",
    "ReLU", "ReLU6", "Reshape", "Scale", "Sigmoid", "Softmax", "Sub", "Tanh",
]
