"""Merging the observers of several processes into the observers of one, from their states.

Why states: a calibration split over processes sends every observer's ``to_state()`` (plain
ints, floats and lists; picklable and JSON-friendly) to every process, and each rebuilds the
same merged observers. Every observer's merge is exact (integer vote counts and histogram bins,
exact minima and maxima, exactly-summed means), so the merged observer equals one observer that
saw every call of every process; states are still folded in the order given (rank order), so
even the fields that are order-sensitive by nature (the median's value lists, a DiffsObserver's
``last_fix_pos``) come out the same on every process.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from . import observer_from_state
from .observer import Observer
from .screening import CalibrationError

__all__ = ["merge_state_maps", "merge_states"]


def merge_states(states: Sequence[dict[str, Any]]) -> Observer:
    """One observer holding every state's calls (same kind and settings; CalibrationError if not)."""
    if not states:
        raise CalibrationError("merge_states needs at least one observer state.")
    merged = observer_from_state(states[0])
    for state in states[1:]:
        merged.merge(observer_from_state(state))
    return merged


def merge_state_maps(per_process: Sequence[Mapping[str, dict[str, Any]]]) -> dict[str, Observer]:
    """``{tensor name: merged observer}`` from one ``{name: state}`` map per process.

    A tensor missing from a process's map (that process never observed it, e.g. it had no data)
    simply contributes nothing. Names come out in first-seen order.
    """
    names: dict[str, None] = {}
    for states in per_process:
        names.update(dict.fromkeys(states))
    return {name: merge_states([states[name] for states in per_process if name in states])
            for name in names}
