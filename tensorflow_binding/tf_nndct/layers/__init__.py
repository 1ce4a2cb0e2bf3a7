"""Keras layers of the quantized model (`QuantLSTM` replaces LSTM and Bidirectional(LSTM),
`QuantGRU` GRU and Bidirectional(GRU))."""
from .quant_gru import QuantGRU
from .quant_lstm import QuantLSTM
from .quant_rnn import QuantRNN, RnnLayout

__all__ = ["QuantGRU", "QuantLSTM", "QuantRNN", "RnnLayout"]
