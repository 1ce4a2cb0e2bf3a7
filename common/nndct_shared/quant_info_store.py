"""The calibration result of one output directory: `quant_info.json` (and, for float-scale
tensors of the CNN flow, `quant_info_float.json`), read and written by every flow through here.

Why one store: the LSTM session, the CNN session and QAT all hand calibration to test mode
through these files, and a user must get the same answer from each for the same problem. So
there is one reader and one strictness:

- a missing file is NO_CALIB_RESULT naming it;
- a broken file is QUANT_INFO_CORRUPT naming the file and the entry (`quant_info.read_quant_info`);
- a file written for another model is CALIB_RESULT_MISMATCH, comparing every section
  (`param`, `output` and `input`) with the names the model expects (`quant_info.check_against`);
- a bit width (or float grid) that differs from the one the calibration recorded is
  QUANT_CONFIG_MISMATCH (`bit_width_changes` + `check_recorded_config`), so test mode never
  quantizes with a grid calibration did not choose.

Reading goes through one pinned version of the directory (`nndct_shared.export_commit.snapshot`,
`pinned()` for several files of one export); writing goes through an export unit (`stage`) when
the file is part of a larger export, or as an export of its own (`write`); file-system failures
are OUTPUT_DIR naming the directory.

Two formats: the LSTM flow reads and writes the RNN quantizer's single-pair file (`read`,
`stage`, `write`); the CNN flow the vai_q_pytorch 3.x file, and reads the older single-pair form
too (`load_record`, `read_record`, `stage_record`, `write_record`; `nndct_shared.quant_info_v3`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .export_commit import Snapshot, StagedView, snapshot
from .messages import error
from .output_dir import staged_export
from .quant_info import QuantInfo, check_against, read_quant_info, to_json_text
from .quant_info_float import (
    FLOAT_QUANT_INFO_FILE,
    FloatQuantInfo,
    check_float_against,
    read_float_quant_info,
    to_float_json_text,
)
from .quant_info_v3 import QuantRecord, read_record, to_json_text_v3

__all__ = ["FLOAT_QUANT_INFO_FILE", "QUANT_INFO_FILE", "QuantInfoStore", "bit_width_changes",
           "check_recorded_config"]

QUANT_INFO_FILE = "quant_info.json"
"""The calibration result's file name in output_dir (the reference's name)."""

_CHANGES_SHOWN = 3

#: What the QUANT_CONFIG_MISMATCH message calls the settings in use, by default.
CURRENT_SETTINGS = "this quantizer's bitwidth / quant_config_file"


def bit_width_changes(expected: Mapping[str, int], recorded: Mapping[str, Iterable[int]]) -> list[str]:
    """One line per tensor whose recorded bit width(s) differ from the expected one.

    `expected`: tensor name -> the bit width it is quantized with now; `recorded`: tensor name
    -> every bit width calibration wrote for it (one per entry: a per-channel tensor has one
    entry per channel). The lines go to `check_recorded_config`."""
    changes = []
    for name, width in expected.items():
        widths = sorted(set(recorded[name]))
        if widths != [width]:
            changes.append(f"bit width of '{name}' ({width} now, "
                           f"{'/'.join(map(str, widths))} at calibration)")
    return changes


def check_recorded_config(path: str | os.PathLike[str], changes: Sequence[str],
                          current: str = CURRENT_SETTINGS) -> None:
    """QUANT_CONFIG_MISMATCH naming the first three `changes` (and how many more), if any."""
    if not changes:
        return
    more = f", ... ({len(changes) - _CHANGES_SHOWN} more)" if len(changes) > _CHANGES_SHOWN else ""
    raise error("QUANT_CONFIG_MISMATCH", current=current, recorded=f"recorded in '{path}'",
                differences=", ".join(changes[:_CHANGES_SHOWN]) + more)


class QuantInfoStore:
    """quant_info.json and quant_info_float.json of `directory` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str], pinned: Snapshot | StagedView | None = None) -> None:
        self.directory = Path(directory)
        self._pinned = pinned

    def pinned(self) -> "QuantInfoStore":
        """This store reading every file from one version of the directory (the one current
        now, or the one it was made with), so that quant_info.json, quant_info_float.json and
        the files read through `source` (bias_corr.pth) come from one export."""
        return self if self._pinned is not None else QuantInfoStore(self.directory, snapshot(self.directory))

    def source(self, name: str) -> Path:
        """Where to read file `name` of the directory: in the pinned version when this store is
        pinned (`pinned`), else in the version current now."""
        return (self._pinned or snapshot(self.directory)).path(name)


    @property
    def path(self) -> Path:
        return self.directory / QUANT_INFO_FILE

    @property
    def float_path(self) -> Path:
        return self.directory / FLOAT_QUANT_INFO_FILE

    # --- reading --------------------------------------------------------------------------

    def read(self, param: Iterable[str], output: Iterable[str],
             input: Iterable[str] = ()) -> QuantInfo:  # noqa: A002 - the file's section name
        """quant_info.json, checked to hold exactly these names in each section (NO_CALIB_RESULT,
        QUANT_INFO_CORRUPT, CALIB_RESULT_MISMATCH otherwise)."""
        source = self.source(QUANT_INFO_FILE)
        if not source.exists():
            raise error("NO_CALIB_RESULT", path=str(self.path))
        info = read_quant_info(source, shown_as=self.path)
        check_against(info, param, output, input)
        return info

    def load_record(self) -> QuantRecord:
        """The CNN flow's quant_info.json (3.x or single-pair), read strictly but not yet matched
        to a model (NO_CALIB_RESULT, QUANT_INFO_CORRUPT)."""
        source = self.source(QUANT_INFO_FILE)
        if not source.exists():
            raise error("NO_CALIB_RESULT", path=str(self.path))
        return read_record(source, shown_as=self.path)

    def read_record(self, param: Iterable[str], output: Iterable[str],
                    input: Iterable[str] = ()) -> QuantRecord:  # noqa: A002 - the file's section name
        """`load_record`, checked to hold exactly these names (CALIB_RESULT_MISMATCH)."""
        record = self.load_record()
        check_against(record.info, param, output, input)
        return record

    def read_float(self, param: Iterable[str], output: Iterable[str]) -> FloatQuantInfo:
        """quant_info_float.json, checked like `read`."""
        source = self.source(FLOAT_QUANT_INFO_FILE)
        if not source.exists():
            raise error("NO_CALIB_RESULT", path=str(self.float_path))
        info = read_float_quant_info(source, shown_as=self.float_path)
        check_float_against(info, param, output)
        return info

    def check_bit_widths(self, info: QuantInfo, expected: Mapping[str, int],
                         current: str = CURRENT_SETTINGS) -> None:
        """QUANT_CONFIG_MISMATCH unless every tensor of `expected` (name -> bit width now, one
        entry per tensor) was calibrated with that bit width. `info` comes from `read`."""
        recorded = {name: [entry[0]] for _, table in info.sections() for name, entry in table.items()}
        check_recorded_config(self.path, bit_width_changes(expected, recorded), current)

    # --- writing --------------------------------------------------------------------------

    def stage(self, batch: Any, info: QuantInfo, float_info: FloatQuantInfo | None = None) -> Path:
        """Stage quant_info.json (and quant_info_float.json when `float_info` is given) in
        `batch` (an export unit, see `output_dir.staged_export`), to land together with the rest
        of an export; returns quant_info.json's path."""
        path = batch.write_bytes(self.path, to_json_text(info).encode("utf-8"))
        if float_info is not None:
            batch.write_bytes(self.float_path, to_float_json_text(float_info).encode("utf-8"))
        return path

    def stage_record(self, batch: Any, record: QuantRecord,
                     float_info: FloatQuantInfo | None = None) -> Path:
        """`stage` for the CNN flow's 3.x quant_info.json."""
        path = batch.write_bytes(self.path, to_json_text_v3(record).encode("utf-8"))
        if float_info is not None:
            batch.write_bytes(self.float_path, to_float_json_text(float_info).encode("utf-8"))
        return path

    def write_record(self, record: QuantRecord) -> Path:
        """`write` for the CNN flow's 3.x quant_info.json."""
        with staged_export(self.directory) as unit:
            return self.stage_record(unit, record)

    def write(self, info: QuantInfo) -> Path:
        """Write quant_info.json as an export of its own (OUTPUT_DIR on a file-system failure)."""
        with staged_export(self.directory) as unit:
            return self.stage(unit, info)
