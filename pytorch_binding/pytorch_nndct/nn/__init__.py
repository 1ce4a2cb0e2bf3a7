"""Quantized replacements of PyTorch modules."""
