"""Messages this project adds to the user guide's catalogue.

They cover (1) the LSTM flow's errors, which the reference RNN quantizer raised as bare
built-ins with terse texts ("The num of bias should be even", "Unimplement packed lstm", ...),
(2) failure modes the reference left undefined or silent (corrupt quant_info.json, NaN/inf in
calibration data, unwritable output_dir, truncated xmodel files), and (3) the quantization-config
errors of ``nndct_shared.config``, split by kind so that every one names the option path and
the fix. IDs follow the guide's scheme, ``QUANTIZER_<TORCH|TF>_<CODE>``.
"""

from __future__ import annotations

from dataclasses import replace

from .catalogue_guide import GUIDE_ERRORS
from .errors import (
    ArgumentError,
    DataError,
    DeviceError,
    ExportError,
    MissingFileError,
    ModelStructureError,
    ModelTypeError,
    OutputDirError,
    QuantConfigError,
    QuantInfoError,
    QuantModeError,
    UnsupportedOpError,
    WorkflowError,
    XmodelFormatError,
)
from .spec import TF_ONLY, TORCH_ONLY, Spec, error, note, warning

# --- the LSTM flow ----------------------------------------------------------------------------

LSTM_ERRORS: tuple[Spec, ...] = (
    error(
        "MODULE_TYPE",
        "The object passed as the model is not a torch.nn.Module (reference: TypeError \"type of "
        "'module' should be 'torch.nn.Module'.\").",
        "The 'module' argument must be a torch.nn.Module, got {got}.",
        "Pass the float model instance (an nn.Module), not its class, its state_dict or a "
        "scripted module.",
        ModelTypeError,
        tf_meaning="The object passed as the model is not a keras.Model.",
        tf_template="The 'model' argument must be a keras.Model, got {got}.",
        tf_fix="Pass the float Keras model instance, not its class or its weights.",
    ),
    error(
        "NO_LSTM",
        "lstm=True but the module contains no LSTM or GRU (reference: RuntimeError \"The top module "
        "... should have one LSTM module at least.\").",
        "The top module '{module}' contains no LSTM or GRU to quantize.",
        "Pass a model that contains at least one torch.nn.LSTM or torch.nn.GRU, or quantize it "
        "without lstm=True.",
        ModelStructureError,
        tf_template="The model '{module}' contains no LSTM or GRU layer to quantize.",
        tf_fix="Pass a model that contains at least one keras.layers.LSTM or keras.layers.GRU.",
    ),
    error(
        "UNSUPPORTED_RNN",
        "The RNN uses a feature the LSTM quantizer does not implement (only standard LSTM cells).",
        "'{module}' uses {feature}, which the LSTM quantizer does not support.",
        "Use a standard LSTM: no projection (proj_size=0), no peepholes, no cell clipping, and "
        "LSTM or GRU rather than SimpleRNN.",
        UnsupportedOpError,
    ),
    error(
        "PACKED_LSTM_TRACE",
        "An LSTM received a PackedSequence while the model was being traced (reference: "
        "NotImplementedError \"Unimplement packed lstm\").",
        "'{module}' received a PackedSequence while it was being traced; tracing a packed LSTM "
        "is not supported.",
        "Trace with a plain padded tensor; packed sequences are fine once the model is quantized.",
        UnsupportedOpError,
        frontends=TORCH_ONLY,
    ),
    error(
        "INITIAL_STATES",
        "The initial states do not match the number of layers (reference: ValueError \"initial "
        "states does not match the number of layers.\").",
        "Initial state {which} has {got} entries in dimension 0, but '{module}' needs {expected} "
        "(num_layers x num_directions).",
        "Pass h0 and c0 shaped [num_layers * num_directions, batch, hidden_size], or omit them "
        "to start from zeros.",
        DataError,
    ),
    error(
        "ODD_BIAS_COUNT",
        "The LSTM's flat parameters hold an odd number of biases (reference: RuntimeError \"The "
        "num of bias should be even\").",
        "'{module}' has {count} bias tensors; an LSTM needs b_ih and b_hh for every layer and "
        "direction.",
        "Use a standard torch.nn.LSTM (bias=True gives both biases, bias=False none).",
        ModelStructureError,
        frontends=TORCH_ONLY,
    ),
    error(
        "DEVICE_MISMATCH",
        "Model or data are not on the quantizer's device (reference: TypeError \"Device of "
        "quantizer is ..., device of model and data should match device of quantizer\").",
        "The quantizer runs on '{quantizer_device}', but the {what} is on '{device}'.",
        "Move the model and data to '{quantizer_device}' with .to(), or create the quantizer on "
        "'{device}'.",
        DeviceError,
        frontends=TORCH_ONLY,
    ),
    error(
        "PARAM_NOT_QUANTIZED",
        "A tensor has no fix position in test mode (reference: only a warning \"The "
        "parameter/activation is not quantized\", then a meaningless huge range).",
        "'{name}' has no fix position in '{path}', so it cannot be quantized in quant_mode 'test'.",
        "Re-run calibration so that the calibration result covers every tensor of this model.",
        QuantInfoError,
    ),
)

LSTM_TF_ERRORS: tuple[Spec, ...] = (
    error(
        "RECURRENT_ACTIVATION",
        "The Keras LSTM uses a recurrent activation other than sigmoid or an activation other "
        "than tanh (the cell's lookup tables are sigmoid and tanh).",
        "LSTM layer '{layer}' uses {which} '{got}'; only '{expected}' is supported.",
        "Build the float model with recurrent_activation='sigmoid' and activation='tanh' (the "
        "Keras defaults) and re-train it.",
        UnsupportedOpError,
        frontends=TF_ONLY,
    ),
    error(
        "DUMP_BATCHSIZE",
        "dump_rnn_outputs_by_timestep needs a batch of one sequence.",
        "{action} needs a batch of size 1, got batch size {batch_size}.",
        "Pass a single sequence, e.g. X_test[:1].",
        DataError,
        frontends=TF_ONLY,
    ),
    error(
        "INPUT_SIGNATURE",
        "The input_signature given to tf_quantizer does not describe the model's inputs.",
        "input_signature {problem}.",
        "Pass a tf.TensorSpec (or a list of them, one per model input) with the input's shape, "
        "with or without the batch dimension, e.g. tf.TensorSpec(x_test[:1].shape[1:], tf.int32).",
        DataError,
        frontends=TF_ONLY,
    ),
)

# --- the GRU flow ------------------------------------------------------------------------------

GRU_ERRORS: tuple[Spec, ...] = (
    error(
        "GRU_ACTIVATION",
        "The Keras GRU uses a recurrent activation other than sigmoid or an activation other "
        "than tanh (the cell's lookup tables are sigmoid and tanh).",
        "GRU layer '{layer}' uses {which} '{got}'; only '{expected}' is supported.",
        "Build the float model with recurrent_activation='sigmoid' and activation='tanh' (the "
        "Keras defaults) and re-train it.",
        UnsupportedOpError,
        frontends=TF_ONLY,
    ),
    error(
        "UNSUPPORTED_GRU",
        "The Keras GRU uses a feature the StandardGruCell cannot express.",
        "GRU layer '{module}' uses {feature}, which the GRU quantizer does not support.",
        "Use a stateless GRU without sequence masks; wrap two GRUs of the same size (a forward "
        "one and a go_backwards one) in Bidirectional.",
        UnsupportedOpError,
        frontends=TF_ONLY,
    ),
)

# --- the CNN flow (PyTorch front end) -------------------------------------------------------

CNN_ERRORS: tuple[Spec, ...] = (
    error(
        "CNN_UNSUPPORTED_OP",
        "The model uses an op the CNN quantizer cannot capture (the reference failed later, in "
        "the xmodel conversion, without naming the user's code).",
        "Op '{op}' at {source} is not supported by the CNN quantizer{detail}.",
        "Replace it by a supported op (see the README's CNN flow section), or wrap it in a "
        "function decorated with pytorch_nndct.utils.register_custom_op (it then runs in float "
        "and is exported as an XIR custom op).",
        UnsupportedOpError,
        frontends=TORCH_ONLY,
    ),
    error(
        "CNN_NO_INPUT_ARGS",
        "The CNN flow needs example inputs to trace the model.",
        "torch_quantizer needs input_args to capture '{module}' (lstm=False).",
        "Pass input_args: a tensor (or tuple of tensors) shaped like one real batch.",
        DataError,
        frontends=TORCH_ONLY,
    ),
    error(
        "FT_PARAM_MISMATCH",
        "A fast-finetuned or bias-corrected parameter file does not match the model being "
        "quantized (the reference loaded it by position and failed inside torch).",
        "Parameter file '{path}' does not match this model: {problem}",
        "Re-run fast_finetune() (or calibration) in quant_mode 'calib' with the same float model "
        "and output_dir, then load the file again in 'test'.",
        QuantInfoError,
        frontends=TORCH_ONLY,
    ),
)

# --- modes, data, files ----------------------------------------------------------------------

FLOW_ERRORS: tuple[Spec, ...] = (
    error(
        "QUANT_MODE",
        "quant_mode is not a supported mode (the reference logged an error and silently "
        "calibrated instead).",
        "Unknown quant_mode {value!r}; expected one of {expected}.",
        "Use 'calib' to calibrate, then 'test' to evaluate and export ('float' runs the float "
        "model).",
        QuantModeError,
    ),
    error(
        "CALIB_DATA_NONFINITE",
        "Calibration data contains NaN or inf (the reference computed undefined fix positions).",
        "Data reaching '{name}' during calibration contains {count} NaN/inf value(s); a fix "
        "position computed from it would be meaningless.",
        "Clean the input data, or fix the overflow in the float model, before calibrating.",
        DataError,
    ),
    error(
        "EXPORT_MODE",
        "An export was called in a quant_mode that cannot produce it.",
        "{action} needs quant_mode {required!r}, but this quantizer runs in {mode!r}.",
        "Create the quantizer with quant_mode={required!r} (after calibration) and call {action} "
        "there.",
        ExportError,
    ),
    error(
        "QUANT_INFO_CORRUPT",
        "quant_info.json exists but cannot be read as a calibration result.",
        "'{path}' is not a valid calibration result: {reason}",
        "Delete it and re-run calibration (quant_mode 'calib', then export_quant_config()).",
        QuantInfoError,
    ),
    error(
        "STATE_DICT_MISSING",
        "state_dict_file was given but does not exist.",
        "state_dict_file '{path}' does not exist.",
        "Pass the path of the float model's saved state_dict, or leave state_dict_file unset if "
        "the model already holds its weights.",
        MissingFileError,
        frontends=TORCH_ONLY,
    ),
    error(
        "STATE_DICT_INVALID",
        "state_dict_file exists but is not a state_dict of this model (the reference failed "
        "inside torch.load or load_state_dict, after loading part of the weights).",
        "state_dict_file '{path}' cannot be loaded into '{module}': {reason}",
        "Pass the file written by torch.save(model.state_dict(), path) for this model class; "
        "it is read with weights_only=True, so pickled models or other objects are refused.",
        ArgumentError,
        frontends=TORCH_ONLY,
    ),
    error(
        "OUTPUT_DIR",
        "output_dir cannot be created or written.",
        "output_dir '{path}' cannot be used: {reason}",
        "Pass an output_dir you can write to (it is created when missing).",
        OutputDirError,
    ),
    error(
        "UNKNOWN_TARGET",
        "The DPU target given to the Inspector or to target= is not in the target database.",
        "Unknown DPU {what} {value!r}. Known targets: {known}.",
        "Pass one of the known target names or its fingerprint (e.g. 'DPUCZDX8G_ISA1_B4096' or "
        "'0x0101000056010407'); the DPU names of your board are in its arch.json.",
        ArgumentError,
    ),
    error(
        "XMODEL_INVALID",
        "A file read as an xmodel is truncated, corrupt or not an XIR graph.",
        "'{path}' is not a readable xmodel: {reason}",
        "Re-export it with export_xmodel(); the file may be truncated or written by another tool.",
        XmodelFormatError,
    ),
    error(
        "QAT_MODEL_MISMATCH",
        "to_deployable() got a model that is not the trainable model of this QatProcessor, so "
        "its learned weights and fix positions cannot be mapped onto the float model.",
        "to_deployable() needs the model returned by this QatProcessor's trainable_model(), "
        "got {got}.",
        "Pass the (trained) model that qat_processor.trainable_model() returned.",
        ModelTypeError,
        frontends=TORCH_ONLY,
    ),
    error(
        "QAT_NO_DEPLOYABLE",
        "A QAT export was called before a deployable model exists.",
        "{action} needs the deployable model; call to_deployable() first.",
        "Call qat_processor.to_deployable(trained_model, output_dir), forward the deployable "
        "model once with batch size 1, then call {action}.",
        ExportError,
        frontends=TORCH_ONLY,
    ),
)

# --- the quantization config (nndct_shared.config) --------------------------------------------

CONFIG_ERRORS: tuple[Spec, ...] = (
    error(
        "QUANT_CONFIG_FILE_MISSING",
        "The quantization config file does not exist.",
        "Quantization config file '{path}' does not exist.",
        "Check quant_config_file, or leave it unset to use the default configuration.",
        MissingFileError,
    ),
    error(
        "QUANT_CONFIG_MISMATCH",
        "The quantization config differs from the one recorded at calibration.",
        "The quantization config in use ({current}) differs from the one used for calibration "
        "({recorded}) at: {differences}.",
        "Use the same quant_config_file for 'calib' and 'test', or re-run calibration.",
        QuantConfigError,
    ),
    error(
        "QUANT_CONFIG_UNKNOWN_KEY",
        "The quantization config has a key the schema does not know.",
        "Unknown key '{path}'{did_you_mean}. Valid keys {where}: {valid}.",
        "Remove or rename '{name}'.",
        QuantConfigError,
    ),
    error(
        "QUANT_CONFIG_MISSING_KEY",
        "A required key of the quantization config is missing.",
        "Required key(s) missing {where}: {missing}.",
        "Add {missing}; default_config().to_dict() shows a complete configuration.",
        QuantConfigError,
    ),
    error(
        "QUANT_CONFIG_TYPE",
        "A quantization config value has the wrong JSON type.",
        "'{path}' must be {expected}, got {got}.",
        "Write '{path}' as {expected}.",
        QuantConfigError,
    ),
    error(
        "QUANT_CONFIG_VALUE",
        "A quantization config value is not one of the allowed values, or out of range.",
        "'{path}' = {value} is not valid{did_you_mean}. Allowed: {valid}.",
        "Set '{path}' to one of: {valid}.",
        QuantConfigError,
    ),
    error(
        "QUANT_CONFIG_CONFLICT",
        "Two quantization config options that cannot be combined (the guide's \"configuration "
        "conflicts\").",
        "'{path}' = {value} cannot be used for {kind} tensors: {problem}.",
        "{hint}",
        QuantConfigError,
    ),
    error(
        "QUANT_CONFIG_TARGET",
        "A quantization config option the target device does not support (the guide's "
        "\"configuration restrictions\" of DPU).",
        "'{path}' = {value} is not supported on target_device '{target}' for {kind} tensors: "
        "{requirement}.",
        "{hint}",
        QuantConfigError,
    ),
)

# --- the CNN exporters (nndct_shared.cnn_export) -----------------------------------------------

CNN_EXPORT_ERRORS: tuple[Spec, ...] = (
    error(
        "CNN_GRAPH_INVALID",
        "A neutral CNN graph handed to an exporter breaks the op contract of "
        "nndct_shared.graph.ops (a front-end bug, caught before any file is written).",
        "Graph '{graph}', node '{node}' ({op_type}): {problem}",
        "The front end that built the graph must follow nndct_shared.graph.ops; report this "
        "with the model that triggers it.",
        ModelStructureError,
    ),
    error(
        "EXPORT_UNSUPPORTED",
        "A node of the CNN graph has no mapping to the requested export format.",
        "{format} export cannot write node '{node}' ({op_type}): {reason}",
        "Keep this op out of the exported part of the model (float region or custom op), or "
        "export another format.",
        UnsupportedOpError,
    ),
    error(
        "ONNX_UNAVAILABLE",
        "ONNX export needs the 'onnx' package, which is not installed.",
        "ONNX export needs the 'onnx' package: {reason}",
        "Install it with 'pip install onnx' (and onnxruntime to run the exported model).",
        ExportError,
    ),
)

# --- exports as one unit, locks, names and bit widths (issue 13) ---------------------------------

EXPORT_SAFETY_MESSAGES: tuple[Spec, ...] = (
    error(
        "OUTPUT_BUSY",
        "Another process holds the commit lock of the output_dir longer than the lock timeout "
        "(nndct_shared.export_commit).",
        "output_dir '{path}' is locked by {holder}, which is committing an export there; waited "
        "{seconds} s.",
        "Let the other run finish (or stop it), or give each run its own output_dir. The wait is "
        "set by the environment variable NNDCT_OUTPUT_LOCK_TIMEOUT (seconds).",
        OutputDirError,
    ),
    error(
        "CALIB_RESULT_UNREADABLE",
        "A file of the calibration result exists but cannot be read (permissions, a directory in "
        "its place, an I/O error).",
        "Calibration result '{path}' cannot be read: {reason}",
        "Make the file readable by this user (or remove what is in its place), or re-run "
        "calibration to write it again.",
        QuantInfoError,
    ),
    error(
        "CALIB_BITWIDTH_MISMATCH",
        "The LSTM test mode is configured with another bit width than the calibration result "
        "holds (the reference ran at the calibrated width without a word).",
        "This quantizer runs at bitwidth={bitwidth}, but the calibration result '{path}' holds "
        "{recorded}-bit fix positions (cell '{cell}').",
        "Create the test-mode quantizer with bitwidth={recorded}, as in calibration, or re-run "
        "calibration with bitwidth={bitwidth}.",
        QuantConfigError,
    ),
    error(
        "TEST_DATA_NONFINITE",
        "Data given to the quantized model in test mode contains NaN or inf, which the integer "
        "datapath cannot represent.",
        "Data reaching '{name}' in test mode contains {count} NaN/inf value(s); the fixed-point "
        "datapath has no code for them.",
        "Clean the input data (replace or drop NaN/inf values) before running the quantized model.",
        DataError,
    ),
    error(
        "NAME_COLLISION",
        "Two different names of the model map to the same file or op name (names keep letters and "
        "digits only), so their files would overwrite each other.",
        "'{first}' and '{second}' are both written as '{stem}' (file and op names keep letters and "
        "digits only).",
        "Rename one of the modules (e.g. the ModuleDict key) so that the names differ in a letter "
        "or digit.",
        ModelStructureError,
    ),
    warning(
        "LSTM_SHARED",
        "One LSTM or GRU module is registered under several attribute names; it is quantized once "
        "and shared.",
        "The RNN registered as {names} is one module: it is quantized once, and every name uses "
        "the same quantized module (one set of weights, fix positions and cell graphs, named after "
        "'{first}').",
        "Register a separate copy (copy.deepcopy) under each name if they should be quantized "
        "apart.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "OUTPUT_NOT_ATOMIC",
        "The output_dir's file system lacks symbolic links or file locks, so an export is "
        "replaced entry by entry (all or nothing on errors, but not under a kill).",
        "Exports into output_dir '{path}' are replaced file by file, not as one unit: {reason}. A "
        "run killed during an export can leave old and new files mixed.",
        "Use an output_dir on a local POSIX file system with symbolic links and file locks (ext4, "
        "xfs, btrfs, tmpfs) for exports that survive a kill.",
    ),
    warning(
        "OUTPUT_CLEANUP",
        "An export is complete, but removing what it replaced failed.",
        "The export into '{path}' is complete, but older versions could not be removed: {reason}",
        "They are removed by the next export into this directory; check its permissions if this "
        "repeats.",
    ),
)

# --- warnings and notes ------------------------------------------------------------------------

PROJECT_WARNINGS: tuple[Spec, ...] = (
    warning(
        "DOT_NOT_FOUND",
        "The Graphviz program 'dot' is not on PATH, so a picture could not be drawn.",
        "The Graphviz program 'dot' is not on PATH; {what} was not drawn, only its dot source "
        "'{path}' was written.",
        "Install Graphviz (apt-get install graphviz, brew install graphviz or conda install "
        "graphviz), or pass image_format=None.",
    ),
    warning(
        "QUANT_MODE_INT",
        "quant_mode was given as an integer (deprecated in the reference too).",
        "quant_mode {value} is an integer; integer modes are deprecated, it is read as {name!r}.",
        "Pass quant_mode as a string: 'calib' or 'test'.",
    ),
    warning(
        "LSTM_ARG_IGNORED",
        "An argument of torch_quantizer has no effect in LSTM mode.",
        "'{argument}' is ignored when lstm=True.",
        "Remove '{argument}' from the call.",
        frontends=TORCH_ONLY,
    ),
    warning(
        "DEPLOY_CHECK_NO_INPUT",
        "A layer saw no input, so it has no deploy-check data (reference: \"Provide inputs for "
        "'<name>' when do deploy checking\").",
        "No input was recorded for '{layer}'; it is left out of the deploy-check dump.",
        "Run quant_model at least once before exporting with deploy_check=True.",
    ),
)

PROJECT_NOTES: tuple[Spec, ...] = (
    note(
        "QUANT_CONFIG_DEFAULT",
        "No config file was given, so the default configuration is used.",
        "No quantization config file given; using the default configuration ({summary}).",
    ),
    note(
        "QUANT_CONFIG_LOADED",
        "The quantization config file was read.",
        "Quantization config loaded from '{path}'.",
    ),
    note(
        "QUANT_MODULE_WRITTEN",
        "The converted (quantizable) module source was written.",
        "=>Quantizable module is generated: '{path}'",
    ),
    note(
        "CALIB_RESULT_WRITTEN",
        "The calibration result was written.",
        "=>Exported quantization steps to '{path}'",
    ),
    note(
        "XMODEL_WRITTEN",
        "An xmodel was written.",
        "=>Successfully converted '{graph}' to xmodel '{path}'",
    ),
    note(
        "DEPLOY_CHECK_WRITTEN",
        "Deploy-check dumps were written.",
        "=>Deploy-check data written to '{path}'",
    ),
    note(
        "INSPECT_START",
        "The Inspector starts (the guide quotes this note).",
        "=>Start to inspect model...",
        frontends=TORCH_ONLY,
    ),
    note(
        "INSPECT_END",
        "The Inspector finished (the guide quotes this note).",
        "=>Finish inspecting.",
        frontends=TORCH_ONLY,
    ),
)

# --- quantization report and dump diff ---------------------------------------------------------

REPORT_ERRORS: tuple[Spec, ...] = (
    error(
        "REPORT_NOT_CALIBRATED",
        "quantizer.report() was called before the quantizer had fix positions to analyse.",
        "report() needs calibrated fix positions, but {what}.",
        "In calib mode run quant_model on calibration data first (then call report()); in test "
        "mode create the quantizer from the output_dir that holds quant_info.json.",
        WorkflowError,
    ),
    error(
        "REPORT_ARGUMENT",
        "An argument of quantizer.report() has a value it cannot use.",
        "report() argument '{argument}' {problem}.",
        "{hint}",
        ArgumentError,
    ),
    error(
        "REPORT_EVAL_FN",
        "The eval_fn given to quantizer.report() failed or did not return a number.",
        "eval_fn {problem}.",
        "Pass a function that takes the quantized model and returns one number where higher is "
        "better (e.g. accuracy; return -loss for a loss).",
        ArgumentError,
    ),
    error(
        "RECURRENT_CONFIG_INVALID",
        "A per-cell-node bit-width config of the recurrent flow breaks its schema.",
        "The recurrent config {source} is invalid: {problem}.",
        "Entries select one cell tensor each: layer_name '<cell graph>::<node or parameter>' as in "
        "quant_info.json, quantizable_data_type the tensor's kind, and the flow's settings with "
        "only bit_width changed (see nndct_shared.report.recurrent_config).",
        QuantConfigError,
    ),
    error(
        "DEPLOY_DIFF_NOT_A_DUMP",
        "A directory given to the dump diff is not a deploy-check dump tree.",
        "'{path}' is not a deploy-check dump tree: {reason}.",
        "Pass the deploy_check_data_int directory written by export_xmodel(deploy_check=True) / "
        "dump_rnn_outputs_by_timestep() (or the output_dir that contains it).",
        MissingFileError,
    ),
    error(
        "DEPLOY_DIFF_TRUNCATED",
        "A dump tree given to the dump diff lacks files or values the other tree has.",
        "The dump tree '{path}' is truncated: {reason}.",
        "Re-run the dump that wrote it to the end (or compare trees of the same model and input).",
        DataError,
    ),
    error(
        "DEPLOY_DIFF_FOREIGN",
        "The two dump trees given to the dump diff dump different graphs or nodes.",
        "The dump trees do not describe the same model: {reason}.",
        "Compare dumps of the same model (same cells / graph, same node names), e.g. ours and the "
        "hardware run of the same xmodel.",
        DataError,
    ),
)

REPORT_WARNINGS: tuple[Spec, ...] = (
    warning(
        "REPORT_EVALUATOR_MISMATCH",
        "The report's float-graph evaluation of a recurrent cell, with every tensor quantized, does "
        "not reproduce the fixed-point datapath's codes.",
        "Cell '{cell}': the report's cell evaluation differs from the fixed-point datapath at "
        "{where}; its sensitivity numbers are estimates.",
        "Please report this as a bug with the model; the per-tensor statistics and the per-step "
        "SQNR still come from the datapath.",
    ),
)

# --- calibration and QAT on several processes (torch.distributed) ----------------------------

DISTRIBUTED_ERRORS: tuple[Spec, ...] = (
    error(
        "DIST_MISMATCH",
        "The processes of a torch.distributed group quantize different models, weights or "
        "quantization settings, so their statistics cannot be merged into one result.",
        "{action}: {what} differs between rank 0 and rank {rank} of the process group; the "
        "ranks' calibrations cannot be merged.",
        "Create the quantizer on every rank with the same model and weights (load the same "
        "checkpoint everywhere) and the same bitwidth, quant_config_file, target and "
        "calib_feedback.",
        WorkflowError,
    ),
    error(
        "DIST_TIMEOUT",
        "A collective step of the quantizer under torch.distributed did not complete: a rank "
        "did not reach it in time, or left the process group.",
        "{action} on rank {rank} of {world}: the other ranks did not all join ({reason}). "
        "Nothing was written.",
        "Call {action} on every rank of the process group (it merges their statistics: do not "
        "guard it with `if rank == 0`), look for an earlier error in the other ranks' logs, or "
        "give init_process_group a longer timeout. The process group cannot be reused after "
        "this error.",
        WorkflowError,
    ),
    error(
        "DIST_CALIB_AFTER_EXPORT",
        "Calibration continued after a distributed export_quant_config() had merged the ranks' "
        "statistics.",
        "export_quant_config(): rank {rank} calibrated {more} after the previous "
        "export_quant_config() merged every rank's statistics; merging again would count the "
        "earlier batches twice.",
        "Run every calibration batch before export_quant_config(), or create a new quantizer "
        "(quant_mode 'calib') to calibrate again.",
        WorkflowError,
    ),
    error(
        "DIST_FAST_FINETUNE",
        "fast_finetune() was called under torch.distributed with more than one rank.",
        "fast_finetune() cannot run on {world} processes: it trains each layer on all of its "
        "calibration samples in one process, and weights finetuned per rank cannot be merged "
        "into one process's result.",
        "Run fast_finetune() in a single process (no process group, or world size 1): it "
        "calibrates too and writes quant_info.json and param.pth. Then evaluate and export in "
        "test mode on as many processes as you like (call load_ft_param() on each).",
        UnsupportedOpError,
        frontends=TORCH_ONLY,
    ),
    error(
        "CALIB_FEEDBACK",
        "calib_feedback has a value the quantizer does not accept here.",
        "calib_feedback={value!r} is not allowed: {reason}.",
        "Leave calib_feedback unset ('running', the reference's behaviour, in one process; "
        "'batch' under torch.distributed, where each batch is fake-quantized at its own "
        "statistics so that the ranks' results merge into exactly one process's result), or "
        "pass 'batch' in one process to reproduce a distributed calibration.",
        ArgumentError,
        frontends=TORCH_ONLY,
    ),
)

# --- the CNN flow's reference 3.x calibration result -------------------------------------------

CNN_3X_MESSAGES: tuple[Spec, ...] = (
    error(
        "CALIB_GRAPH_MISMATCH",
        "A quant_info.json this tool wrote records the graph_md5 of another graph than the model's "
        "(every tensor name matches, but ops, connections, attributes or shapes differ).",
        "Calibration result '{path}' was written for another graph: its graph_md5 is {recorded}, "
        "this model's is {current} (the hash covers node names, op types, connections, attributes "
        "and the shapes of params and outputs, not weight values or the batch size).",
        "Re-run calibration (quant_mode 'calib') with this model, input shape and config, or point "
        "output_dir at the calibration result of this model.",
        QuantInfoError,
    ),
    warning(
        "CALIB_VERSION_MISMATCH",
        "A 3.x quant_info.json was written by another tool or version (e.g. vai_q_pytorch): its "
        "graph_md5 is that program's hash and is not compared; its names were checked one by one.",
        "Calibration result '{path}' was written by '{recorded}', this is '{current}': its "
        "graph_md5 is not compared, its tensor names all match this model.",
        "Nothing to do if '{path}' was calibrated for this model; re-run calibration with this tool "
        "to have the graph checked too.",
    ),
)

# --- mixed bit widths in the recurrent flow (issue 19) ------------------------------------------

MIXED_WIDTH_ERRORS: tuple[Spec, ...] = (
    error(
        "RNN_WIDTH_RANGE",
        "A bit width of the recurrent flow's config is not an integer in the range the integer "
        "datapath supports.",
        "In the recurrent config {source}, {where} is {value!r}: a bit width must be an integer in "
        "[{low}, {high}].",
        "Use a width in [{low}, {high}] (the RNN loops hold every code in int16; 16 for the RNN DPU).",
        QuantConfigError,
    ),
    error(
        "RNN_WIDTH_CLASS",
        "A recurrent-flow config entry names a cell tensor class that does not exist.",
        "In the recurrent config {source}, {where} names unknown node classes {classes}.",
        "Use the classes {known} (README \"Mixed bit widths in the recurrent flow\").",
        QuantConfigError,
    ),
    error(
        "RNN_WIDTH_NO_CELL",
        "A recurrent-flow config entry selects no cell or tensor of the model (a module, layer, "
        "direction or tensor name the model does not have).",
        "In the recurrent config {source}, {where} selects no {what} of this model.",
        "Check the entry's module (attribute path or graph prefix), layer index, direction and "
        "layer_name against the model's cell graphs (their names are the keys of quant_info.json).",
        QuantConfigError,
    ),
    error(
        "RNN_WIDTH_MISMATCH",
        "The calibration result holds other per-tensor bit widths than the test-mode quantizer's "
        "config sets.",
        "The calibration result '{path}' holds {recorded}-bit fix positions for '{tensor}', the "
        "quantizer's config sets {configured} bits.",
        "Create the test-mode quantizer with the quant_config_file (and bitwidth) used in "
        "calibration, or calibrate again with this config.",
        QuantConfigError,
    ),
)

# --- the CNN flow's config options and documented behaviours (issue 17) ------------------------

CNN_CONFIG_MESSAGES: tuple[Spec, ...] = (
    note(
        "DPU_ACTIVATION_ROUND",
        "A DPU config leaves activations at round_mode std_round (as the guide's default listing "
        "does); they are rounded half_up, the DPU's rounding.",
        "round_mode 'std_round' ({paths}) applies to weights, bias and input here; activations "
        "on the DPU are rounded half_up (the DPU's rounding, as in the default configuration).",
    ),
    warning(
        "QUANT_CONFIG_LAYER_UNMATCHED",
        "A layer_quantize_config entry selects no layer of the model, so it has no effect.",
        "layer_quantize_config[{index}] ({selector}) matches no layer of this model and has no "
        "effect. The model's {what}: {names}",
        "Copy a {field} from the list above (layer names are in the generated <Model>.py next to "
        "each module), or remove the entry.",
    ),
    note(
        "KEEP_FLOAT_LAYERS",
        "keep_first_last_layer_accuracy / keep_add_layer_accuracy left some layers in float.",
        "=>{option}: {count} layer(s) run in float (not quantized): {names}",
    ),
    warning(
        "XMODEL_NARROW_RANGE",
        "The xmodel's fix ops have no narrow-range attribute, so the DPU may use the code "
        "-2^(bw-1) for activations that quant_model keeps on the narrow grid.",
        "The xmodel's fix ops cannot express narrow_range: params are written on the narrow grid, "
        "but on the DPU the activations {names} may take the code -2^(bw-1) where quant_model "
        "clamps to -2^(bw-1)+1.",
        "Set narrow_range to false for activations if the deployed model must match quant_model "
        "bit for bit.",
    ),
)

# --- the Keras CNN flow (tf_nndct.cnn) ----------------------------------------------------------


def _for_keras(table: tuple[Spec, ...], code: str) -> Spec:
    """The Keras twin of an entry that the PyTorch front end alone had: same texts, TF ID."""
    return replace(next(spec for spec in table if spec.code == code), frontends=TF_ONLY)


KERAS_CNN_SPECS: tuple[Spec, ...] = (
    error(
        "CNN_UNSUPPORTED_OP",
        "The Keras model has a layer (or op) the CNN quantizer cannot capture into the neutral "
        "CNN graph.",
        "Layer '{layer}' ({layer_type}) is not supported by the CNN quantizer{detail}.",
        "Replace it by a supported layer (see the README's Keras CNN section). Recurrent layers "
        "(LSTM, GRU, Bidirectional) are quantized by the recurrent flow: pass cnn=False to "
        "quantize only them and keep every other layer float.",
        UnsupportedOpError,
        frontends=TF_ONLY,
    ),
    error(
        "CNN_PARAM_FILE",
        "A parameter file of the Keras CNN flow (the bias corrections written by calibration) "
        "does not match the model being quantized.",
        "Parameter file '{path}' does not match this model: {problem}",
        "Re-run calibration (quant_mode 'calib', export_quant_config()) with the same float model "
        "and output_dir, then create the test-mode quantizer again.",
        QuantInfoError,
        frontends=TF_ONLY,
    ),
    warning(
        "LSTM_ARG_IGNORED",
        "An argument of tf_quantizer has no effect in the recurrent-only flow.",
        "'{argument}' is ignored by the recurrent flow (every layer but the recurrent ones "
        "stays float).",
        "Remove '{argument}' from the call, or pass cnn=True to quantize the other layers too.",
        frontends=TF_ONLY,
    ),
    _for_keras(GUIDE_ERRORS, "INSPECTOR_OUTPUT_FORMAT"),
    _for_keras(GUIDE_ERRORS, "INSPECTOR_INPUT_FORMAT"),
    _for_keras(PROJECT_NOTES, "INSPECT_START"),
    _for_keras(PROJECT_NOTES, "INSPECT_END"),
)

PROJECT_SPECS: tuple[Spec, ...] = (
    LSTM_ERRORS + LSTM_TF_ERRORS + GRU_ERRORS + CNN_ERRORS + FLOW_ERRORS + CONFIG_ERRORS + CNN_EXPORT_ERRORS
    + PROJECT_WARNINGS + PROJECT_NOTES + REPORT_ERRORS + REPORT_WARNINGS + DISTRIBUTED_ERRORS
    + EXPORT_SAFETY_MESSAGES + CNN_3X_MESSAGES + MIXED_WIDTH_ERRORS + CNN_CONFIG_MESSAGES + KERAS_CNN_SPECS
)
