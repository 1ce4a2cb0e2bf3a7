"""The configuration a quantizer uses, from its API arguments: `quant_config_file`, `bitwidth`
and `mix_bit` (`torch_quantizer` / the CNN flow).

- A config file wins over the arguments, as in the reference: where its bit widths differ
  from what the arguments ask for, BITWIDTH_MISMATCH says so (per tensor kind).
- Without a file: `default_config(bitwidth)` (target DPU for 8 bits, CPU otherwise: the DPU
  computes in int8 only).
- ``mix_bit=True`` (no file): mixed bit widths, weights and bias at `bitwidth` and inputs and
  activations at 16 bits (`MIX_BIT_ACTIVATION_WIDTH`), the RNN quantizer's scheme (its LSTM
  flow always does this) brought to the CNN flow. 16-bit activations make activation rounding
  negligible, so low weight widths keep most of the accuracy. Target CPU (not an int8 DPU).
  The guide has no more words on mix_bit than the argument's name.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from ..messages import note, warn
from .defaults import default_config
from .enums import RoundMode, TensorKind
from .load import load_config
from .schema import QuantConfig, TensorOverrides, TensorQuantizeConfig

__all__ = ["MIX_BIT_ACTIVATION_WIDTH", "api_bit_widths", "mixed_bit_config", "quantizer_config"]

#: Bit width of inputs and activations with mix_bit=True.
MIX_BIT_ACTIVATION_WIDTH = 16


def api_bit_widths(bitwidth: int, mix_bit: bool = False) -> dict[TensorKind, int]:
    """The bit width the API arguments ask for, per tensor kind."""
    activations = MIX_BIT_ACTIVATION_WIDTH if mix_bit else bitwidth
    return {TensorKind.INPUT: activations, TensorKind.WEIGHTS: bitwidth,
            TensorKind.BIAS: bitwidth, TensorKind.ACTIVATION: activations}


def mixed_bit_config(bitwidth: int) -> QuantConfig:
    """`default_config` with inputs and activations at 16 bits (target CPU): see the module."""
    base = default_config(bitwidth, "CPU")
    wide = TensorOverrides(bit_width=MIX_BIT_ACTIVATION_WIDTH)
    activation = TensorOverrides(bit_width=MIX_BIT_ACTIVATION_WIDTH, round_mode=RoundMode.HALF_UP)
    data = base.to_dict()
    data["tensor_quantize_config"] = TensorQuantizeConfig(input=wide, activation=activation).to_dict()
    return QuantConfig.from_dict(data)


def warn_bit_width_conflicts(config: QuantConfig, bitwidth: int, mix_bit: bool = False) -> None:
    """BITWIDTH_MISMATCH for every bit width of the config file that differs from the one the
    arguments ask for (the file's value is used)."""
    wanted = api_bit_widths(bitwidth, mix_bit)
    groups: dict[tuple[int, int], list[str]] = {}
    for kind in config.quantizable_data_type:
        width = config.for_tensor(kind).bit_width
        if width != wanted[kind]:
            groups.setdefault((width, wanted[kind]), []).append(kind.value)
    for (width, asked), names in groups.items():
        warn("BITWIDTH_MISMATCH", tensor=f"{', '.join(names)} tensors", config_bit_width=width,
             api_bit_width=f"{asked}{', mix_bit=True' if mix_bit else ''}")


def quantizer_config(source: str | os.PathLike[str] | Mapping[str, Any] | QuantConfig | None,
                     bitwidth: int, mix_bit: bool = False) -> QuantConfig:
    """The config of a quantizer created with these arguments (see the module docstring)."""
    if source is not None:
        config = load_config(source)
        if isinstance(source, (str, os.PathLike)):
            note(f"Quantization config loaded from '{source}'.")
        warn_bit_width_conflicts(config, bitwidth, mix_bit)
        return config
    if mix_bit:
        return mixed_bit_config(bitwidth)
    return default_config(bitwidth, "DPU" if bitwidth == 8 else "CPU")
