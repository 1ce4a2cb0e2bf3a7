"""JapaneseVowels as fixed-shape float32 arrays, shared by the PyTorch and Keras examples.

Why this dataset: it is a real sequence-classification set (speaker identification from
12 LPC cepstrum coefficients per frame, 9 speakers, 7-29 frames per utterance; Kudo,
Toyama & Shimbo 1999, UCI) and its UEA `.ts` files ship inside the sktime wheel, so the
examples run without downloading anything. sktime itself is never imported (that would
import pandas): the files are located through the import system and parsed by
`ts_format.read_ts_file`. This module imports neither torch nor tensorflow, so both
examples feed their models bit-identical inputs.

Preprocessing (deterministic, no randomness):
  1. labels "1".."9" -> int64 class ids 0..8;
  2. per-feature mean and standard deviation over every real frame of the TRAIN split
     (float64), applied to both splits;
  3. 'pre' zero padding to the longest sequence of either split (29 frames), like
     Keras `pad_sequences(padding="pre")`: the last time step is always a real frame,
     so a "take the last output" classifier needs no masking, and a zero frame is a
     frame at the training mean;
  4. cases reordered round-robin over classes (first case of each class in class order,
     then the second of each, ...), because the files are sorted by speaker and the
     examples' `--subset_len N` takes the first N cases: any prefix then spans all
     speakers that still have cases left.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ts_format import read_ts_file

DATASET_NAME = "JapaneseVowels"
SKTIME_REQUIREMENT = "sktime>=0.30"


def sktime_data_dir() -> Path:
    """Folder holding JapaneseVowels_{TRAIN,TEST}.ts inside the installed sktime package."""
    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The {DATASET_NAME} example data ships inside the sktime wheel, which is not "
            f"installed. Install it with: pip install '{SKTIME_REQUIREMENT}' "
            "(or pass data_dir= pointing at a folder with the .ts files)."
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "datasets" / "data" / DATASET_NAME
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"sktime is installed at {list(spec.submodule_search_locations)} but has no "
        f"datasets/data/{DATASET_NAME} folder; reinstall it with: pip install "
        f"--force-reinstall '{SKTIME_REQUIREMENT}'"
    )


def _round_robin_order(labels: np.ndarray) -> np.ndarray:
    """Indices visiting the classes in turn, keeping file order within each class."""
    rank_in_class = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        rank_in_class[members] = np.arange(len(members))
    # lexsort: last key is primary -> sort by rank, then by class, then by file position.
    return np.lexsort((np.arange(len(labels)), labels, rank_in_class))


def _pre_pad(series: list[np.ndarray], length: int) -> np.ndarray:
    """Stack (t_i, F) arrays into (N, length, F) with zeros in front of each sequence."""
    features = series[0].shape[1]
    out = np.zeros((len(series), length, features), dtype=np.float64)
    for n, case in enumerate(series):
        out[n, length - case.shape[0]:, :] = case
    return out


def load_dataset(
    data_dir: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test) for JapaneseVowels.

    x_*: float32, shape (N, 29, 12) (batch, time, feature), normalised and pre-padded as
    described in the module docstring; y_*: int64 class ids in [0, 9).
    Shapes: 270 training and 370 test utterances.
    data_dir: a folder with JapaneseVowels_TRAIN.ts and JapaneseVowels_TEST.ts; by
    default the copy inside the installed sktime package.
    """
    folder = Path(data_dir) if data_dir is not None else sktime_data_dir()
    train = read_ts_file(folder / f"{DATASET_NAME}_TRAIN.ts")
    test = read_ts_file(folder / f"{DATASET_NAME}_TEST.ts")
    if train.class_labels != test.class_labels:
        raise ValueError(f"train and test declare different classes: "
                         f"{train.class_labels} vs {test.class_labels}")
    class_index = {name: i for i, name in enumerate(train.class_labels)}
    y_train = np.array([class_index[s] for s in train.labels], dtype=np.int64)
    y_test = np.array([class_index[s] for s in test.labels], dtype=np.int64)

    frames = np.concatenate(train.series, axis=0)
    mean = frames.mean(axis=0)
    std = frames.std(axis=0)
    if np.any(std == 0):
        raise ValueError(f"a feature is constant over the training frames: std={std}")
    norm_train = [(case - mean) / std for case in train.series]
    norm_test = [(case - mean) / std for case in test.series]

    length = max(case.shape[0] for case in train.series + test.series)
    x_train = _pre_pad(norm_train, length).astype(np.float32)
    x_test = _pre_pad(norm_test, length).astype(np.float32)

    train_order = _round_robin_order(y_train)
    test_order = _round_robin_order(y_test)
    return (x_train[train_order], y_train[train_order],
            x_test[test_order], y_test[test_order])
