"""The float-scale part of a CNN calibration result, as entries of quant_info_float.json.

A float-scale tensor's result is a `FloatQParams` (scale, zero point), or one per output
channel for per-channel weights; the file holds one entry per tensor, or one per channel named
``<tensor>[<c>]`` (as quant_info.json names per-channel fix positions). Test mode reads the
entries back strictly, and records every grid that differs from the current settings (another
config than calibration's) for the caller's QUANT_CONFIG_MISMATCH.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nndct_shared.calibration import FloatQParams
from nndct_shared.messages import error
from nndct_shared.quant_info_float import FLOAT_QUANT_INFO_FILE, FloatEntry, FloatQuantInfo

__all__ = ["channel_names", "float_entries", "float_entry_names", "read_float_qparams"]


def channel_names(name: str, count: int) -> list[str]:
    """The entry names of a per-channel tensor: ``name[0]``, ``name[1]``, ..."""
    return [f"{name}[{c}]" for c in range(count)]


def _grid(s: Any) -> tuple[int, bool, bool, bool]:
    return (s.bit_width, s.signed, s.narrow_range, s.symmetric)


def float_entries(names: Sequence[str], settings: Mapping[str, Any],
                  results: Mapping[str, Any]) -> dict[str, FloatEntry]:
    """{entry name: FloatEntry} of the float-scale tensors `names` (PARAM_NOT_QUANTIZED for a
    tensor without a result)."""
    entries: dict[str, FloatEntry] = {}
    for name in names:
        result = results.get(name)
        per_channel = isinstance(result, tuple)
        values = result if per_channel else (result,)
        if not values or not all(isinstance(v, FloatQParams) for v in values):
            raise error("PARAM_NOT_QUANTIZED", name=name, path=FLOAT_QUANT_INFO_FILE)
        keys = channel_names(name, len(values)) if per_channel else [name]
        for key, qp in zip(keys, values):
            entries[key] = FloatEntry(*_grid(settings[name]), float(qp.scale), int(qp.zero_point))
    return entries


def float_entry_names(names: Sequence[str], settings: Mapping[str, Any],
                      channel_count: Callable[[str, int], int]) -> list[str]:
    """The entry names the file must have for `names` (per-channel tensors expanded)."""
    out: list[str] = []
    for name in names:
        axis = settings[name].axis
        out += [name] if axis is None else channel_names(name, channel_count(name, axis))
    return out


def read_float_qparams(info: FloatQuantInfo, params: Sequence[str], outputs: Sequence[str],
                       settings: Mapping[str, Any], channel_count: Callable[[str, int], int],
                       changed: list[str]) -> dict[str, Any]:
    """{tensor: FloatQParams or a tuple per channel} from a file already checked against
    `float_entry_names`; grids that differ from `settings` are appended to `changed`."""
    result: dict[str, Any] = {}
    for table, names in ((info.param, params), (info.output, outputs)):
        for name in names:
            s = settings[name]
            keys = [name] if s.axis is None else channel_names(name, channel_count(name, s.axis))
            now = _grid(s)
            then = sorted({(e.bit_width, e.signed, e.narrow_range, e.symmetric)
                           for e in (table[k] for k in keys)})
            if then != [now]:
                shown = then[0] if len(then) == 1 else then
                changed.append(f"grid of '{name}' ((bit_width, signed, narrow_range, symmetric) = "
                               f"{now} now, {shown} at calibration)")
            values = tuple(FloatQParams(table[k].scale, table[k].zero_point) for k in keys)
            result[name] = values if s.axis is not None else values[0]
    return result
