"""Quantization entry points of the Keras front end."""
