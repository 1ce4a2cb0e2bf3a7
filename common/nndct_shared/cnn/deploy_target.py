"""Whether an xmodel is written for a quantized CNN, and what it cannot carry.

- XMODEL_DEVICE (guide: "Not support to dump xmodel when target device is not DPU"): a config
  file whose target_device is CPU or GPU describes a model that is not deployed to a DPU, so
  `export_xmodel()` writes nothing and warns, as the reference does. Without a config file the
  default configuration is used, which the guide calls "adapted to DPU device": an xmodel is
  written whatever `bitwidth` is (the default's target_device is CPU for widths other than 8
  only because the DPU's int8 restriction would refuse them). A hardware-aware quantizer
  (`target=` a DPU) is deployed to that DPU whatever its config's target_device says.
- XMODEL_NARROW_RANGE: the XIR fix op has no narrow-range attribute; params are written on the
  narrow grid (their codes never reach -2^(bw-1)), but an activation the DPU computes can take
  that code where quant_model clamps it, so the warning names those activations.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nndct_shared.messages import warn

__all__ = ["XMODEL_TARGETS", "warn_narrow_activations", "xmodel_wanted"]

#: The config target devices an xmodel is written for.
XMODEL_TARGETS = ("DPU", "DPU_RNN")


def xmodel_wanted(config_file_target: Any, hardware_target: Any = None) -> bool:
    """True when an xmodel is written; False after the XMODEL_DEVICE warning (see above).

    `config_file_target`: the target_device of the user's config file, None without one."""
    device = str(getattr(config_file_target, "value", config_file_target))
    if config_file_target is None or hardware_target is not None or device in XMODEL_TARGETS:
        return True
    warn("XMODEL_DEVICE", target=device)
    return False


def warn_narrow_activations(settings: Mapping[str, Any]) -> list[str]:
    """XMODEL_NARROW_RANGE naming the power-of-two narrow-range activations; returns them."""
    names = [name for name, s in settings.items()
             if s.narrow_range and not s.is_param and not s.is_float]
    if names:
        shown = ", ".join(f"'{n}'" for n in names[:10]) + (f", ... ({len(names) - 10} more)"
                                                          if len(names) > 10 else "")
        warn("XMODEL_NARROW_RANGE", names=shown)
    return names
