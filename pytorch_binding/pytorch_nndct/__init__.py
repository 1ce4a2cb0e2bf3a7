"""PyTorch front end of the fixed-point quantizer (`from pytorch_nndct.apis import torch_quantizer`)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from pytorch_nndct import QatProcessor` (the guide's import), loaded on first use."""
    if name == "QatProcessor":
        from .qat import QatProcessor

        return QatProcessor
    raise AttributeError(f"module 'pytorch_nndct' has no attribute {name!r}")
