"""Quantization processors: how a user's module becomes a quantized model."""
