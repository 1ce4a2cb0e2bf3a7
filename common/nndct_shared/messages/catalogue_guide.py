"""Messages whose IDs come from the vai_q_pytorch user guide ("vai_q_pytorch message" tables).

`meaning` repeats the guide's description; `template` is the text this project prints, with the
details the guide says are "in the message text" as fields; `fix` is the hint.

TF analogues: the guide documents only ``QUANTIZER_TORCH_*``. Where the same situation exists
in the Keras front end (``tf_nndct``), the entry is also defined as ``QUANTIZER_TF_<same code>``,
reworded for Keras where needed. Torch-only concepts (DataParallel, TorchScript, QAT modules,
the Inspector, ONNX export) have no TF entry. Two torch codes name PyTorch itself and get a
renamed TF analogue: ``TORCH_VERSION`` -> ``TF_VERSION`` and ``PYTORCH_TRACE`` -> ``TF_TRACE``.

The guide lists some codes both as a warning and as an error (EXPORT_XMODEL, TORCH_VERSION,
REUSED_MODULE, XMODEL_DEVICE); they are kept in both tables, as in the guide.
"""

from __future__ import annotations

from .errors import (
    ArgumentError,
    DataError,
    DeviceError,
    ExportError,
    KernelImportError,
    MissingFileError,
    ModelStructureError,
    ModelTypeError,
    QuantConfigError,
    QuantInfoError,
    UnsupportedOpError,
    VersionMismatchError,
    WorkflowError,
)
from .spec import TF_ONLY, TORCH_ONLY, Spec, error, warning

GUIDE_WARNINGS: tuple[Spec, ...] = (
    warning(
        "BATCHNORM_AFFINE",
        "BatchNorm OP attribute affine=False has been replaced by affine=True when parsing the "
        "model.",
        "BatchNorm '{node}' has affine=False; it was parsed as affine=True (weight 1, bias 0).",
        "No action needed; construct the BatchNorm with affine=True to silence this warning.",
        tf_template="BatchNormalization '{node}' has center or scale disabled; it was parsed with "
        "beta 0 and gamma 1.",
        tf_fix="No action needed; use center=True and scale=True to silence this warning.",
    ),
    warning(
        "BITWIDTH_MISMATCH",
        "Bit width setting in configuration file is conflict with that from torch_quantizer API, "
        "will use that in configuration file.",
        "Bit width of {tensor} in the configuration file ({config_bit_width}) differs from the "
        "bitwidth argument ({api_bit_width}); the configuration file's value is used.",
        "Pass the same bitwidth to the API as in the configuration file, or drop one of them.",
    ),
    warning(
        "CONVERT_XMODEL",
        "Convert to XMODEL failed. Check message text to locate the reason.",
        "Converting '{graph}' to xmodel failed: {reason}",
        "See the reason above; ops the xmodel cannot express must stay outside the quantized part.",
    ),
    warning(
        "CUDA_UNAVAILABLE",
        "CUDA (HIP) is not available, change device to CPU.",
        "CUDA is not available; the quantizer runs on CPU instead of '{requested}'.",
        "Pass device=torch.device('cpu') to silence this, or install a CUDA build of PyTorch.",
        tf_template="No GPU is visible to TensorFlow; the quantizer runs on CPU instead of "
        "'{requested}'.",
        tf_fix="Run on CPU explicitly, or install a GPU build of TensorFlow.",
    ),
    warning(
        "DATA_PARALLEL",
        "Data parallel is not supported. The wrapper 'torch.nn.DataParallel' has been removed in "
        "vai_q_pytorch.",
        "The model is wrapped in torch.nn.DataParallel; the wrapper was removed and its inner "
        "module is quantized.",
        "Pass model.module instead of the DataParallel wrapper.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "DEPLOY_MODEL",
        "Only quantization aware training process has deployable model.",
        "Only the quantization-aware-training flow has a deployable model; the call is ignored "
        "in the '{flow}' flow.",
        "Use quant_model for post-training quantization, or QatProcessor.to_deployable() in QAT.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "DEVICE_MISMATCH",
        "The device of input arguments mismatch with quantizer device type.",
        "Input arguments are on '{device}' but the quantizer runs on '{quantizer_device}'; they "
        "are moved to '{quantizer_device}'.",
        "Create the inputs on the quantizer's device.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "EXPORT_XMODEL",
        "Failed to generate xmodel due to some reasons. Refer to the message text.",
        "The xmodel was not generated: {reason}",
        "Export needs quant_mode 'test', at least one forward pass and batch size 1.",
    ),
    warning(
        "FINETUNE_IGNORED",
        "Fast finetune function will be ignored in test mode!",
        "fast_finetune() is ignored in quant_mode '{mode}'.",
        "Run fast_finetune() with quant_mode 'calib'; in 'test' call load_ft_param() instead.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "FLOAT_OP",
        "vai_q_pytorch recognize the list OP as a float operator by default.",
        "These ops are not quantized and run in float: {ops}",
        "Register them as custom ops, or keep them outside the quantized part of the model.",
    ),
    warning(
        "INSPECTOR_PATTERN",
        "The pattern (of operations) can be fused by compiler and will be assigned to DPU.",
        "Pattern {pattern} can be fused by the compiler and will be assigned to DPU.",
        "No action needed.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "LEAKYRELU",
        "Force to change negative_slope of LeakyReLU to 0.1015625 because DPU only supports this "
        "value. It is recommended to change all negative_slope of LeakyReLU to 0.1015625 and "
        "re-train the float model for better deployed model accuracy.",
        "negative_slope of LeakyReLU '{node}' was changed from {slope} to 0.1015625, the only "
        "value DPU supports.",
        "Set negative_slope=0.1015625 in the float model and re-train it for best accuracy.",
        tf_template="alpha of LeakyReLU '{node}' was changed from {slope} to 0.1015625, the only "
        "value DPU supports.",
        tf_fix="Set alpha=0.1015625 in the float model and re-train it for best accuracy.",
    ),
    warning(
        "MATPLOTLIB",
        "Matplotlib is needed for visualization but not found. It needs to be installed.",
        "matplotlib is needed for {purpose} but is not installed.",
        "pip install matplotlib",
    ),
    warning(
        "MEMORY_SHORTAGE",
        "There is not enough memory for fast fine-tune and this process will be ignored! Try to "
        "use a smaller calibration dataset.",
        "Not enough memory for fast finetune ({detail}); fast finetune is skipped.",
        "Use a smaller calibration dataset or batch size.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "NO_XIR",
        "Can't find XIR package in environment. It needs to be installed.",
        "The XIR package was not found: {consequence}",
        "Install the XIR Python package (it ships with the Vitis AI docker images).",
    ),
    warning(
        "REPLACE_RELU6",
        "ReLU6 has been replaced by ReLU.",
        "ReLU6 '{node}' has been replaced by ReLU.",
        "Set convert_relu6_to_relu to false in the quantization config to keep ReLU6.",
    ),
    warning(
        "REPLACE_SIGMOID",
        "Sigmoid has been replaced by Hardsigmoid.",
        "Sigmoid '{node}' has been replaced by Hardsigmoid.",
        "Re-train the float model with Hardsigmoid for best accuracy.",
    ),
    warning(
        "REPLACE_SILU",
        "SiLU has been replaced by Hardswish.",
        "SiLU '{node}' has been replaced by Hardswish.",
        "Set convert_silu_to_hswish to false in the quantization config to keep SiLU.",
    ),
    warning(
        "SHIFT_CHECK",
        "Quantization scale is too large or too small.",
        "The quantization scale of '{node}' is out of the range the target supports: {detail}",
        "Check the value range of this node; re-train or fast-finetune so its shifts stay in "
        "range.",
    ),
    warning(
        "TENSOR_NOT_QUANTIZED",
        "Some tensors are not quantized, please check their particularity.",
        "These tensors are not quantized: {names}",
        "Make sure calibration data reaches them and that they are float tensors inside the "
        "quantized part of the model.",
    ),
    warning(
        "TENSOR_TYPE_NOT_QUANTIZABLE",
        "The tensor type of the node cannot be quantized. Only support float32/double/float16 "
        "quantization.",
        "Tensor '{name}' has dtype {dtype} and is not quantized; only float32, float64 and "
        "float16 tensors are quantized.",
        "No action needed for integer or boolean tensors; cast to float if it must be quantized.",
    ),
    warning(
        "TENSOR_VALUE_INVALID",
        "The tensor has \"inf\" or \"nan\" value. Quantization for this tensor is ignored.",
        "Tensor '{name}' has inf or nan values; its quantization is skipped.",
        "Check the float model and its inputs for overflow or invalid data.",
    ),
    warning(
        "TORCH_VERSION",
        "Exporting torch script is only supported with pytorch 1.10 and later version.",
        "{feature} needs PyTorch {required}; found {found}. It is skipped.",
        "Upgrade PyTorch to use {feature}.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "TF_VERSION",
        "TF analogue of QUANTIZER_TORCH_TORCH_VERSION: a feature needs a newer TensorFlow.",
        "{feature} needs TensorFlow {required}; found {found}. It is skipped.",
        "Upgrade TensorFlow to use {feature}.",
        frontends=TF_ONLY,
    ),
    warning(
        "XIR_MISMATCH",
        "XIR version does not match current vai_q_pytorch.",
        "XIR version {found} does not match this quantizer (expects {expected}).",
        "Install the XIR version this quantizer was built for.",
    ),
    warning(
        "XMODEL_DEVICE",
        "Not support to dump xmodel when target device is not DPU.",
        "The xmodel is not dumped because target_device is '{target}', not a DPU.",
        "Set target_device to 'DPU' (or 'DPU_RNN' for LSTM models) in the quantization config.",
    ),
    warning(
        "REUSED_MODULE",
        "Reused module may lead to low accuracy of QAT, make sure this is what you expect. Refer "
        "to the message text to locate the module with issue.",
        "Module '{module}' is called {count} times in forward; its calls share quantization "
        "parameters, which may lower QAT accuracy.",
        "Define a separate module instance for each call if they should be quantized apart.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "DEPRECATED_ARGUMENT",
        "The argument \"device\" is no longer needed. Device information is get from the model "
        "directly.",
        "The argument '{argument}' is deprecated and ignored: {reason}",
        "Remove '{argument}' from the call.",
    ),
    warning(
        "SCALE_VALUE",
        "Exported scale values are not trained.",
        "Scale values of '{name}' were exported before training; they are the initial values.",
        "Train the model (QAT) before exporting its scales.",
        frontends=TORCH_ONLY,
    ),
)

GUIDE_ERRORS: tuple[Spec, ...] = (
    error(
        "BIAS_CORRECTION",
        "Bias correction file in quantization result directory does not match current model.",
        "Bias correction file '{path}' does not match the current model: {detail}",
        "Re-run calibration (quant_mode 'calib') with this model to regenerate it.",
        QuantInfoError,
        frontends=TORCH_ONLY,
    ),
    error(
        "CALIB_RESULT_MISMATCH",
        "Node name mismatch is found when loading quantization steps of tensors. Make sure the "
        "quantizer and framework versions and the model are the same as in calibration.",
        "Calibration result '{path}' does not belong to this model: {n_missing} tensor(s) of the "
        "model are missing from it ({missing}); {n_unexpected} name(s) in it are not in the model "
        "({unexpected}).",
        "Re-run calibration (quant_mode 'calib') with this exact model, or point output_dir at "
        "the calibration result of this model.",
        QuantInfoError,
    ),
    error(
        "EXPORT_ONNX",
        "Quantized module, which is based pytorch traced model, can not be exported to ONNX due "
        "to pytorch internal failure. The pytorch internal failure reason is listed in message "
        "text. May needs adjust float model code.",
        "ONNX export of '{model}' failed: {reason}",
        "Adjust the float model code so that torch.onnx can export it (see the reason).",
        ExportError,
        frontends=TORCH_ONLY,
    ),
    error(
        "EXPORT_XMODEL",
        "Failed convert graph to xmodel. Needs check the reasons in message text.",
        "Converting '{graph}' to xmodel failed: {reason}",
        "See the reason; the quantizer must run in quant_mode 'test' with one forward pass of "
        "batch size 1 before export.",
        ExportError,
    ),
    error(
        "FAST_FINETUNE",
        "Fast finetuned parameter file does not exist. Call load_ft_param in model code to load "
        "them.",
        "Fast-finetuned parameter file '{path}' does not exist.",
        "Run fast_finetune() in quant_mode 'calib' first, then call load_ft_param() in 'test'.",
        MissingFileError,
        frontends=TORCH_ONLY,
    ),
    error(
        "FIX_INPUT_TYPE",
        "Data type or value is illegal in arguments of quantization OP when exporting ONNX "
        "format model.",
        "Argument '{argument}' of quantization op '{op}' is illegal for ONNX export: {value!r}",
        "Pass integer bit widths and fix positions, and float tensors, to the quantization op.",
        ExportError,
        frontends=TORCH_ONLY,
    ),
    error(
        "ILLEGAL_BITWIDTH",
        "Bitwidth setting of tensors quantization is illegal. It should be integer, and in range "
        "given in message text.",
        "Bit width {value!r} at '{path}' is illegal: it must be an integer in [{low}, {high}].",
        "Use an integer bit width in [{low}, {high}] (8 for DPU, 16 for LSTM activations).",
        QuantConfigError,
    ),
    error(
        "IMPORT_KERNEL",
        "Importing vai_q_pytorch library file error. Check pytorch version matching vai_q_pytorch "
        "version (pytorch_nndct.__version__) or not.",
        "Cannot import the compiled kernels ({module}): {reason}",
        "Rebuild the package from its root with `pip install --no-build-isolation -e .`.",
        KernelImportError,
    ),
    error(
        "NO_CALIB_RESULT",
        "Quantization result file does not exist. Please check calibration is done or not.",
        "Calibration result '{path}' does not exist.",
        "Run calibration first (quant_mode 'calib', forward the data, then "
        "export_quant_config()) with the same output_dir.",
        MissingFileError,
    ),
    error(
        "NO_CALIBRATION",
        "Quantization calibration is not performed completely, check if module FORWARD function "
        "is called! FORWARD function of torch_quantizer.quant_model needs to be called in user "
        "code explicitly.",
        "Calibration did not run: quant_model was never called in quant_mode 'calib' before "
        "{action}.",
        "Call quant_model(...) on calibration data before {action}.",
        WorkflowError,
    ),
    error(
        "NO_FORWARD",
        "torch_quantizer.quant_model FORWARD function must be called before exporting "
        "quantization result.",
        "{action} needs at least one forward pass of quant_model first.",
        "Call quant_model(...) at least once (with batch size 1 for an xmodel) before {action}.",
        ExportError,
    ),
    error(
        "OP_REGIST",
        "The type of OP can't be registered multiple times.",
        "Op type '{op_type}' is already registered.",
        "Give the custom op a unique op_type.",
        WorkflowError,
        frontends=TORCH_ONLY,
    ),
    error(
        "PYTORCH_TRACE",
        "Failed to get pytorch traced graph from model and input arguments. The pytorch internal "
        "failure reason is reported in message text. May needs adjust float model code.",
        "Tracing the model failed: {reason}",
        "Make the float model pass torch.jit.trace with the given input_args (the guide's jit "
        "trace test: tensors in and out of forward(); torch.fx is tried first, torch.jit.trace when "
        "fx cannot trace).",
        ModelStructureError,
        frontends=TORCH_ONLY,
    ),
    error(
        "TF_TRACE",
        "TF analogue of QUANTIZER_TORCH_PYTORCH_TRACE: tracing the Keras model with the input "
        "signature failed.",
        "Tracing the model with the input signature failed: {reason}",
        "Make model.call traceable by tf.function with the given input_signature.",
        ModelStructureError,
        frontends=TF_ONLY,
    ),
    error(
        "QUANT_CONFIG",
        "Quantization configuration items are illegal. Refer to the message text.",
        "Quantization config is invalid at '{path}': {problem}",
        "{hint}",
        QuantConfigError,
    ),
    error(
        "SHAPE_MISMATCH",
        "Tensors shape mismatch. Refer to the message text.",
        "Shape mismatch for {what}: expected {expected}, got {got}.",
        "Feed tensors shaped like the ones used at calibration (only the batch dimension may "
        "differ), or re-run calibration.",
        DataError,
    ),
    error(
        "TORCH_VERSION",
        "Pytorch version is not supported for the function or does not match vai_q_pytorch "
        "version (pytorch_nndct.__version__). Refer to the message text.",
        "{feature} is not supported with PyTorch {found}: {requirement}",
        "Install a PyTorch version that meets: {requirement}.",
        VersionMismatchError,
        frontends=TORCH_ONLY,
    ),
    error(
        "TF_VERSION",
        "TF analogue of QUANTIZER_TORCH_TORCH_VERSION.",
        "{feature} is not supported with TensorFlow {found}: {requirement}",
        "Install a TensorFlow version that meets: {requirement}.",
        VersionMismatchError,
        frontends=TF_ONLY,
    ),
    error(
        "XMODEL_BATCHSIZE",
        "Batch size must be 1 when exporting xmodel.",
        "Exporting an xmodel needs batch size 1, but the last forward pass used batch size "
        "{batch_size}.",
        "Run quant_model once on a batch of size 1 (e.g. --subset_len 1 --batch_size 1) before "
        "exporting.",
        ExportError,
    ),
    error(
        "INSPECTOR_OUTPUT_FORMAT",
        "Inspector only supports dump svg or png format.",
        "image_format {value!r} is not supported.",
        "Use image_format 'svg' or 'png', or None to skip the picture.",
        ArgumentError,
        frontends=TORCH_ONLY,
    ),
    error(
        "INSPECTOR_INPUT_FORMAT",
        "Inspector doesn't support this fingerprint. Please provide architecture name instead.",
        "Inspector does not support the fingerprint {value!r}.",
        "Pass the DPU architecture name (e.g. 'DPUCAHX8L_ISA0_SP') instead.",
        ArgumentError,
        frontends=TORCH_ONLY,
    ),
    error(
        "UNSUPPORTED_OPS",
        "The quantization of the op is not supported.",
        "Quantization of op type '{op_type}' ('{node}') is not supported.",
        "Keep this op outside the quantized part of the model, or register it as a custom op.",
        UnsupportedOpError,
    ),
    error(
        "TRACED_NOT_SUPPORT",
        "The model produced by 'torch.jit.script' is not supported in vai_q_pytorch.",
        "Module '{module}' is a TorchScript module; scripted models are not supported.",
        "Pass the original nn.Module, before torch.jit.script.",
        ModelTypeError,
        frontends=TORCH_ONLY,
    ),
    error(
        "NO_SCRIPT_MODEL",
        "vai_q_pytorch does not find any script model.",
        "No TorchScript model was found in '{path}'.",
        "Export the model with export_torch_script() first, or check the path.",
        MissingFileError,
        frontends=TORCH_ONLY,
    ),
    error(
        "REUSED_MODULE",
        "Quantized module is called multiple times in forward pass. If you want to share "
        "quantized parameters in multiple calls, call trainable_model with "
        "\"allow_reused_module=True\".",
        "Module '{module}' is called {count} times in forward.",
        "Define one module instance per call, or call trainable_model(allow_reused_module=True) "
        "to share quantization parameters.",
        ModelStructureError,
        frontends=TORCH_ONLY,
    ),
    error(
        "DATA_PARALLEL_NOT_ALLOWED",
        "torch.nn.DataParallel object is not allowed.",
        "A torch.nn.DataParallel object was passed as '{argument}'.",
        "Pass model.module instead of the DataParallel wrapper.",
        ModelTypeError,
        frontends=TORCH_ONLY,
    ),
    error(
        "INPUT_NOT_QUANTIZED",
        "Input is not quantized. Please use QuantStub/DeQuantStub to define quantization scope.",
        "Input '{name}' is not quantized.",
        "Wrap the part to quantize with QuantStub/DeQuantStub.",
        ModelStructureError,
        frontends=TORCH_ONLY,
    ),
    error(
        "NOT_A_MODULE",
        "Quantized operation must be instance of \"torch.nn.Module\", please replace the function "
        "by a \"torch.nn.Module\" object. Original source range is indicated in message text.",
        "Quantized operation '{op}' at {source} is not a torch.nn.Module.",
        "Replace the function by a module, e.g. '+' by pytorch_nndct.nn.modules.functional.Add.",
        ModelTypeError,
        frontends=TORCH_ONLY,
    ),
    error(
        "QAT_PROCESS_ERROR",
        "Must call \"trainable_model\" first before getting deployable model.",
        "{action} was called before trainable_model().",
        "Call trainable_model() and train before {action}.",
        WorkflowError,
        frontends=TORCH_ONLY,
    ),
    error(
        "QAT_DEPLOYABLE_MODEL_ERROR",
        "The trained model has BN fused to CONV and cannot be converted to a deployable model. "
        "Make sure model.fuse_conv_bn() is not called.",
        "The trained model has BatchNorm fused into Conv and cannot be converted to a deployable "
        "model.",
        "Do not call model.fuse_conv_bn() before to_deployable().",
        WorkflowError,
        frontends=TORCH_ONLY,
    ),
    error(
        "XMODEL_DEVICE",
        "Xmodel can only be exported in CPU mode, use deployable_model(src_dir, "
        "used_for_xmodel=True).",
        "An xmodel can only be exported from a model on CPU; the model is on '{device}'.",
        "Move the model to CPU first, e.g. deployable_model(src_dir, used_for_xmodel=True).",
        DeviceError,
        frontends=TORCH_ONLY,
    ),
)
