"""Keras layers of the quantized model (`QuantLSTM` replaces LSTM and Bidirectional(LSTM))."""
from .quant_lstm import QuantLSTM, RnnLayout

__all__ = ["QuantLSTM", "RnnLayout"]
