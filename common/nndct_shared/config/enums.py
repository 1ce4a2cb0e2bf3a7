"""The closed value sets of the quantization config, as ``str`` enums.

Each member's value is the spelling used in the JSON file (as in the vai_q_pytorch user guide,
"Configuration of Quantization Strategy"). Being ``str`` subclasses, members compare equal to
those strings and serialise to them. Parsing is case-insensitive (the guide itself writes
"Maxmin", "MSE", "Float"); output always uses the canonical lower-case spelling.
"""

from __future__ import annotations

from enum import Enum


class ConfigEnum(str, Enum):
    """Base: ``str(member)`` is the JSON spelling; `lookup` is the case-insensitive parser."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def choices(cls) -> list[str]:
        """The JSON spellings, in definition order."""
        return [m.value for m in cls]

    @classmethod
    def lookup(cls, text: str) -> ConfigEnum | None:
        """The member spelled `text` (ignoring case), or None."""
        folded = text.strip().lower()
        for member in cls:
            if member.value.lower() == folded:
                return member
        return None


class TargetDevice(ConfigEnum):
    """Device the quantized model is deployed to ("target_device").

    DPU, CPU and GPU are the guide's options. DPU_RNN is this project's name for the
    DPU-for-RNN IP (U25 / U50LV, the RNN quantizer's target): int16 activations, floor rounding.
    Each target's restrictions are enforced by ``nndct_shared.config.restrictions``.
    """

    DPU = "DPU"
    CPU = "CPU"
    GPU = "GPU"
    DPU_RNN = "DPU_RNN"

    @classmethod
    def lookup(cls, text: str) -> TargetDevice | None:
        folded = text.strip().upper().replace("-", "_")
        return cls.__members__.get(folded)


class TensorKind(ConfigEnum):
    """Kinds of tensors a config addresses ("quantizable_data_type", "tensor_quantize_config").

    input: outputs of the model's input nodes (and QuantStub); weights and bias: layer
    parameters; activation: outputs of every other quantized node.
    """

    INPUT = "input"
    WEIGHTS = "weights"
    BIAS = "bias"
    ACTIVATION = "activation"


class CalibMethod(ConfigEnum):
    """How the quantization scale is calibrated ("method").

    maxmin: from the observed min/max. percentile: clips at the `percentage` percentile of the
    observed values.
    entropy: minimises the KL divergence between float and quantized histograms.
    mse: minimises the mean squared quantization error over candidate float scales.
    diffs: the vai_q / RNN quantizer power-of-two search: try fix positions from the max-based
    one upwards (``diffs_search_range`` candidates) and keep the one with the least squared error.
    """

    MAXMIN = "maxmin"
    PERCENTILE = "percentile"
    ENTROPY = "entropy"
    MSE = "mse"
    DIFFS = "diffs"


class RoundMode(ConfigEnum):
    """Rounding of scaled values to integers ("round_mode").

    std_round: ties away from zero (C ``round``; the reference kernels' method 3, used for
    weights and bias). half_even: ties to even (banker's). half_up: ties toward +inf (the "DPU
    round", method 2, for CNN activations on DPU). half_down: ties toward zero (the later
    kernels' method 6). floor: toward -inf, i.e. truncation of the scaled value (the RNN
    quantizer's method 4, for LSTM activations; a project addition to the guide's list).
    """

    STD_ROUND = "std_round"
    HALF_EVEN = "half_even"
    HALF_UP = "half_up"
    HALF_DOWN = "half_down"
    FLOOR = "floor"


class ScaleType(ConfigEnum):
    """Scale representation ("scale_type"): any float, or a power of two (a fix position)."""

    FLOAT = "float"
    POWER_OF_TWO = "poweroftwo"


class CalibStatistic(ConfigEnum):
    """How one scale is chosen from the per-batch scales ("calib_statistic_method").

    modal: the most frequent per-batch fix position (the smallest one on ties), as the
    reference's ``scipy.stats.mode``. max / mean / median: of the per-batch scales. Only
    input and activation tensors are calibrated per batch; weights and bias ignore it.
    """

    MODAL = "modal"
    MAX = "max"
    MEAN = "mean"
    MEDIAN = "median"
