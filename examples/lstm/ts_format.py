"""Reader for the sktime/UEA `.ts` text format, for multivariate classification data.

Why our own reader: sktime's loader returns pandas objects and importing it pulls in
pandas; the example only needs the numbers, and both the PyTorch and the Keras example
must see bit-identical arrays, so a small numpy-only parser is the simplest contract.

Format handled (the subset the shipped classification sets use):
  * lines starting with ``#`` are comments;
  * ``@key value`` header lines (``@dimensions``, ``@classLabel true ...``,
    ``@timeStamps false``, ``@missing``...), then ``@data``;
  * one case per data line: the dimensions separated by ``:``, values in a dimension
    separated by ``,``, and the class label as the last ``:``-field.
Time-stamped series and missing values (``?``) are rejected with a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class TsFormatError(ValueError):
    """A `.ts` file that this reader cannot interpret; the message names file and line."""


@dataclass
class TsDataset:
    """The cases of one `.ts` file.

    series: one float64 array of shape (length_i, dimensions) per case (time-major, so it
        can be stacked into the (N, T, F) layout that batch-first LSTMs take).
    labels: the class label string of each case, as written in the file.
    class_labels: the label set declared by ``@classLabel``, in declared order.
    """

    series: list[np.ndarray]
    labels: list[str]
    class_labels: list[str]
    header: dict[str, str] = field(default_factory=dict)


def _parse_bool(value: str, key: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise TsFormatError(f"{where}: @{key} must be 'true' or 'false', got {value!r}")
    return lowered == "true"


def _parse_case(line: str, dimensions: int, where: str) -> tuple[np.ndarray, str]:
    fields = line.split(":")
    if len(fields) != dimensions + 1:
        raise TsFormatError(
            f"{where}: expected {dimensions} dimensions and a class label "
            f"({dimensions + 1} ':'-separated fields), found {len(fields)} fields"
        )
    *dims, label = fields
    columns = []
    for d, text in enumerate(dims):
        if "?" in text:
            raise TsFormatError(f"{where}: dimension {d} has a missing value '?'; "
                                "this reader supports complete series only")
        if "(" in text:
            raise TsFormatError(f"{where}: dimension {d} is time-stamped; "
                                "this reader supports '@timeStamps false' only")
        try:
            columns.append(np.array([float(v) for v in text.split(",")], dtype=np.float64))
        except ValueError as exc:
            raise TsFormatError(f"{where}: dimension {d}: {exc}") from None
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise TsFormatError(f"{where}: dimensions of one case have different lengths {sorted(lengths)}")
    return np.stack(columns, axis=1), label.strip()


def read_ts_file(path: str | Path) -> TsDataset:
    """Parse a multivariate, labelled `.ts` file into per-case (length, dims) arrays."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .ts file at {path}")
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    dimensions = 1
    class_labels: list[str] = []
    with path.open("r", encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, start=1):
            line = raw.strip()
            where = f"{path.name}:{lineno}"
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise TsFormatError(f"{where}: expected a '@' header line before @data")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    if "classlabel" not in header:
                        raise TsFormatError(f"{where}: no @classLabel header; "
                                            "this reader needs labelled data")
                    continue
                header[key] = value.strip()
                if key == "dimensions":
                    dimensions = int(value)
                elif key == "timestamps" and _parse_bool(value, key, where):
                    raise TsFormatError(f"{where}: '@timeStamps true' is not supported")
                elif key == "classlabel":
                    flag, *names = value.split()
                    if not _parse_bool(flag, key, where):
                        raise TsFormatError(f"{where}: '@classLabel false': the file has no labels")
                    class_labels = names
                continue
            case, label = _parse_case(line, dimensions, where)
            if class_labels and label not in class_labels:
                raise TsFormatError(f"{where}: label {label!r} is not in @classLabel {class_labels}")
            series.append(case)
            labels.append(label)
    if not in_data:
        raise TsFormatError(f"{path.name}: no @data section")
    if not series:
        raise TsFormatError(f"{path.name}: @data section is empty")
    return TsDataset(series=series, labels=labels, class_labels=class_labels, header=header)
