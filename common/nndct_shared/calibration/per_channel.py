"""Per-channel calibration of a weight with any per-tensor method: one observer per channel.

The config's ``per_channel: true`` (weights only) gives every output channel of a layer's
weight its own scale. Power-of-two diffs and maxmin have a fused kernel for that
(``ParamObserver(axis=...)``); every other method, and float scales, use this wrapper: the
weight is split along ``axis`` and each slice goes to its own observer, built from
``template`` (an observer kind and its constructor arguments, as in ``Observer.to_state``), so
the per-channel result is exactly the per-tensor method applied to each channel. ``fix_pos``
is the tuple of the channels' results; a channel that is all zero has no range and gets the
inner observer's ``no_range_result()`` (a zero channel is represented exactly by any grid).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .observer import Observer
from .screening import CalibrationError

__all__ = ["PerChannelObserver"]


class PerChannelObserver(Observer):
    """One inner observer per slice along `axis` (see the module docstring)."""

    kind = "PerChannelObserver"

    def __init__(self, axis: int, template: dict[str, Any], name: str | None = None) -> None:
        config = template.get("config", {}) if isinstance(template, dict) else {}
        super().__init__(int(config.get("bit_width", 8)), config.get("max_fix_pos"), name)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise CalibrationError(f"axis must be an integer, got {axis!r}.")
        self.axis = int(axis)
        self.template = {"kind": template["kind"], "config": dict(config)}
        self._factory()  # an unknown kind fails here, not at the first call
        self.channels: list[Observer] = []

    def _factory(self) -> Callable[[str | None], Observer]:
        from . import observer_class  # the registry lives in the package

        cls = observer_class(self.template["kind"])
        return lambda name: cls(name=name, **self.template["config"])

    def _observe_array(self, array: np.ndarray) -> None:
        if not -array.ndim <= self.axis < array.ndim:
            raise CalibrationError(f"tensor '{self.name}' has {array.ndim} dimension(s); axis "
                                   f"{self.axis} does not exist.")
        slices = np.moveaxis(array, self.axis, 0)
        if not self.channels:
            make = self._factory()
            self.channels = [make(None if self.name is None else f"{self.name}[{c}]")
                             for c in range(slices.shape[0])]
        if len(self.channels) != slices.shape[0]:
            raise CalibrationError(f"tensor '{self.name}' has {slices.shape[0]} channels now, "
                                   f"{len(self.channels)} before.")
        for observer, values in zip(self.channels, slices):
            observer.observe(np.ascontiguousarray(values))

    def observe(self, x: Any) -> None:
        """Learn from one tensor; an all-zero weight still gives every channel its result."""
        array = np.asarray(x)
        if array.size and not array.any() and array.dtype.kind == "f":
            self._observe_array(array)  # every channel is "no range": see fix_pos
            self.calls_counted += 1
            return
        super().observe(x)

    @property
    def fix_pos(self) -> tuple[Any, ...] | None:
        if not self.channels or self.calls_counted == 0:
            return None
        results = [o.fix_pos for o in self.channels]
        return tuple(o.no_range_result() if r is None else r
                     for o, r in zip(self.channels, results))

    def _config(self) -> dict[str, Any]:
        return {"axis": self.axis, "template": self.template}

    def _merge_data(self, other: PerChannelObserver) -> None:
        if not self.channels:
            self.channels = other.channels
            return
        if other.channels and len(other.channels) != len(self.channels):
            raise CalibrationError(f"cannot merge observers of '{self.name}' with "
                                   f"{len(other.channels)} and {len(self.channels)} channels.")
        for mine, theirs in zip(self.channels, other.channels):
            mine.merge(theirs)

    def _data_state(self) -> dict[str, Any]:
        return {"channels": [o.to_state() for o in self.channels]}

    def _load_data_state(self, data: dict[str, Any]) -> None:
        from . import observer_from_state

        self.channels = [observer_from_state(state) for state in data["channels"]]
