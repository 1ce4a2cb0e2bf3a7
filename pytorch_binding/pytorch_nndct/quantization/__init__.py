"""Quantization at run time for the CNN flow: pure-torch fix ops and the calib/test runtime."""
