"""Keras 3 / TensorFlow front end of the fixed-point quantizer."""

__version__ = "0.1.0"
