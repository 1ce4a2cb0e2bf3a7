"""PyTorch front end of the fixed-point quantizer (`from pytorch_nndct.apis import torch_quantizer`)."""

__version__ = "0.1.0"
