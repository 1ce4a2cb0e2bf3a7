"""Framework-neutral core of the fixed-point quantizer.

Everything that the PyTorch front end (`pytorch_nndct`) and the Keras front end (`tf_nndct`)
share lives here: the C++ kernels (`nndct_shared.kernels`), the graph IR, the quantization
config, calibration, the LSTM cell definition and the writers for quant_info.json, xmodel and
deploy-check dumps. This package never imports torch or tensorflow.
"""

__version__ = "0.1.0"
