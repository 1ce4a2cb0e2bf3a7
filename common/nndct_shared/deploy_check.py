"""Deploy-check dumps: every node's float and integer data, for comparison with the hardware.

The compiler/simulator of the target checks a deployed model against these files node by node,
so their layout is a contract with tools we do not control and is written exactly as the
reference quantizer writes it (checked byte for byte against its files):

``<root>/<graph>/frame_<t>/`` (per time step, the LSTM flow, ``write_frame``) or
``<root>/<graph>/`` (the CNN flow, ``write_tensors``) holds, for every record:

- ``<stem>.txt`` / ``<stem>.bin``: the float data, flattened row-major. txt: one value per line
  in C ``%12g`` format (``    0.414886``), lines joined by newlines with no newline after the
  last value. bin: float32 little-endian.
- ``<stem>_fix.txt`` / ``<stem>_fix.bin`` when the record has a bit width and fix position: the
  integer codes ``x * 2**fix_pos``. txt: ``%g``, one per line, same newline rule. bin: raw
  int16 little-endian for bit width 16, int8 for 5..8, and for 1..4 two codes per byte (see
  ``pack_nibbles``). Other bit widths raise ``DeployCheckError``.
- ``shape.txt``: one line ``<shape>: <raw node name>`` per record (parameters excluded), in the
  order given, each line ending in a newline. ``shape_style="tuple"`` writes ``(1, 16)`` as the
  reference's golden files (and older releases) do; ``"list"`` writes ``[1, 16]`` as newer
  releases do.

``<stem>`` is the name with every character outside ``[0-9A-Za-z]`` replaced by ``_``
(``P::w_ii * input_0 + bias_i`` -> ``P__w_ii___input_0___bias_i``), the same rule as xmodel op
names, so a name can never leave the dump directory. The graph directory name follows the same
rule (the reference kept ``/`` there; we do not, so no graph name can escape ``root_dir``).

Integer codes are computed, not re-quantized: the data handed in must already lie on the
``2**-fix_pos`` grid and inside the bit width's range (it is the output of the quantized model).
Data that does not is a bug upstream (dumping a float tensor, or the wrong fix position), and
raises ``DeployCheckError`` naming the node instead of writing codes that silently disagree with
the float file.

Each call writes a whole directory into a temporary sibling and renames it into place, so a
failure midway leaves no partial frame (an existing frame of the same index is replaced). Given
a stager (an ``nndct_shared.export_commit.ExportUnit`` in the flows, or an ``AtomicBatch``),
the writer only stages its directories there and the stager's owner commits them together with
the rest of an export.

File names are bounded: a stem longer than ``MAX_STEM_LENGTH`` characters (a very long module
path) is cut and ends in a hash of the full name, so that ``<stem>_fix.txt`` and the temporary
names stay under the 255-byte limit of common file systems and stay distinct.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from .atomic_io import AtomicBatch

__all__ = [
    "DEPLOY_CHECK_DIR",
    "DeployCheckError",
    "DeployCheckWriter",
    "DumpRecord",
    "dump_file_stem",
    "fix_codes",
    "format_shape",
    "pack_nibbles",
]

DEPLOY_CHECK_DIR = "deploy_check_data_int"
"""The dumps' directory in an export's output_dir (the reference's name, both flows)."""

DumpRecord = tuple[str, Any, "int | None", "int | None"]
"""``(name, float_array, bit_width, fix_pos)``; bit_width/fix_pos None -> float file only."""

_UNSAFE_CHARS = re.compile(r"[^0-9A-Za-z]")
MAX_STEM_LENGTH = 200
"""Longest file stem; longer ones keep their first characters and end in ``_<16 hex>``."""
_HASH_CHARS = 16
_SHAPE_FILE = "shape"
_FIX_SUFFIX = "_fix"


class DirectoryStager(Protocol):
    """Where an export stages directories (`ExportUnit`, `AtomicBatch`)."""

    def directory(self, path: str | os.PathLike[str]) -> Path: ...


class DeployCheckError(ValueError):
    """A deploy-check dump cannot be written as asked (bad name, data, bit width or format)."""


def dump_file_stem(name: str) -> str:
    """File stem for a node/tensor/graph name: every char outside [0-9A-Za-z] becomes ``_``.

    The result never contains a path separator or ``..``, so it cannot leave its directory;
    past ``MAX_STEM_LENGTH`` characters it is cut and ends in ``_`` and 16 hex digits of the
    SHA-256 of the full name (stable between runs, distinct for distinct names).
    """
    if not isinstance(name, str) or not name:
        raise DeployCheckError(f"deploy-check name {name!r} must be a non-empty string.")
    stem = _UNSAFE_CHARS.sub("_", name)
    if len(stem) <= MAX_STEM_LENGTH:
        return stem
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    return f"{stem[:MAX_STEM_LENGTH - _HASH_CHARS - 1]}_{digest}"


def format_shape(shape: Sequence[int], style: str = "tuple") -> str:
    """Shape text of a ``shape.txt`` line: ``(1, 16)`` (tuple style) or ``[1, 16]`` (list)."""
    dims = [int(d) for d in shape]
    if style == "tuple":
        return str(tuple(dims))
    if style == "list":
        return str(dims)
    raise DeployCheckError(f"shape_style must be 'tuple' or 'list', got {style!r}.")


def _code_dtype(bit_width: int, name: str, mixed_widths: bool = False) -> np.dtype:
    if isinstance(bit_width, bool) or not isinstance(bit_width, (int, np.integer)):
        raise DeployCheckError(f"node '{name}': bit_width {bit_width!r} is not an integer.")
    if bit_width == 16 or (mixed_widths and 9 <= bit_width <= 16):  # 9..15: the recurrent flow's mixed widths
        return np.dtype("<i2")
    if 1 <= bit_width <= 8:
        return np.dtype("i1")
    raise DeployCheckError(
        f"node '{name}': bit width {bit_width} cannot be dumped; deploy-check integer files "
        "support 16 bits (int16) and 1..8 bits (int8), and 9..15 bits (int16) in the recurrent "
        "flow's mixed widths. Quantize this tensor to a supported width."
    )


def fix_codes(data: Any, bit_width: int, fix_pos: int, name: str = "?", mixed_widths: bool = False) -> np.ndarray:
    """Integer codes ``data * 2**fix_pos`` as int16 (bw 16) or int8 (bw 1..8), flattened.

    Raises ``DeployCheckError`` if a value is not finite, not on the ``2**-fix_pos`` grid, or
    outside ``[-2**(bw-1), 2**(bw-1)-1]``: the data must come from the quantized model.
    """
    dtype = _code_dtype(bit_width, name, mixed_widths)
    if isinstance(fix_pos, bool) or not isinstance(fix_pos, (int, np.integer)):
        raise DeployCheckError(f"node '{name}': fix_pos {fix_pos!r} is not an integer.")
    flat = np.asarray(data, dtype=np.float64).reshape(-1)
    scaled = np.ldexp(flat, int(fix_pos))
    low, high = -(2 ** (bit_width - 1)), 2 ** (bit_width - 1) - 1
    bad = ~np.isfinite(scaled) | (scaled != np.trunc(scaled)) | (scaled < low) | (scaled > high)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise DeployCheckError(
            f"node '{name}': value {float(flat[index])!r} at flat index {index} is not a "
            f"{bit_width}-bit fixed-point number at fix_pos {fix_pos} ({int(bad.sum())} such "
            "value(s)); dump the output of the quantized model, with the fix position it was "
            "quantized at."
        )
    return scaled.astype(dtype)


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Pack signed 4-bit-or-narrower codes two per byte, as the reference's bin dumps do.

    Element ``2k`` goes to the high nibble and element ``2k+1`` to the low nibble of byte ``k``;
    each nibble is the code's 4-bit two's complement; an odd count pads the last low nibble with
    0. (This is the reference's order; readers must use the same.)
    """
    values = np.asarray(codes, dtype=np.int16).reshape(-1)
    if values.size % 2:
        values = np.append(values, np.int16(0))
    high = (values[0::2] & 0xF) << 4
    low = values[1::2] & 0xF
    return (high | low).astype(np.uint8)


def _float_text(data: np.ndarray) -> str:
    return "\n".join("%12g" % v for v in data.reshape(-1).tolist())


def _int_text(codes: np.ndarray) -> str:
    return "\n".join("%g" % v for v in codes.tolist())


class DeployCheckWriter:
    """Writes deploy-check dump directories under ``root_dir``.

    ``data_format`` is ``"txt"`` (the LSTM flow) or ``"bin"`` (the CNN flow). Callers select
    what to dump (the reference dumps batch element 0 only, ``data[:1]``) and pass it in graph
    order; the writer owns layout, names, number formats and atomicity. With ``batch`` each
    directory is only staged there (an ``ExportUnit`` or ``AtomicBatch``); it appears when that
    commits.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        data_format: str = "txt",
        shape_style: str = "tuple",
        batch: DirectoryStager | None = None,
        mixed_widths: bool = False,
    ) -> None:
        self.mixed_widths = mixed_widths  # the recurrent flow: 9..15-bit codes dumped as int16
        if data_format not in ("txt", "bin"):
            raise DeployCheckError(
                f"data_format must be 'txt' or 'bin' (the dump data file format should be txt "
                f"or bin file), got {data_format!r}."
            )
        format_shape((), shape_style)  # validates the style early
        self.root_dir = Path(root_dir)
        self.data_format = data_format
        self.shape_style = shape_style
        self.batch = batch

    def graph_dir(self, graph_name: str) -> Path:
        """``<root>/<sanitized graph name>``; checked to stay inside ``root_dir``."""
        path = self.root_dir / dump_file_stem(graph_name)
        root = self.root_dir.resolve()
        if path.resolve().parent != root:
            raise DeployCheckError(
                f"graph name {graph_name!r} would be written outside {self.root_dir}."
            )
        return path

    def write_frame(
        self,
        graph_name: str,
        frame_index: int,
        records: Iterable[DumpRecord],
        params: Iterable[DumpRecord] = (),
    ) -> Path:
        """Write ``<root>/<graph>/frame_<frame_index>/`` atomically and return its path.

        ``records`` are the node outputs of one time step, in processing order (they make
        ``shape.txt``). ``params`` are written only into frame 0, as the reference does (they do
        not change between frames); for other frames they are ignored, so a caller may pass the
        same list every time.
        """
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)) or (
            frame_index < 0
        ):
            raise DeployCheckError(
                f"frame_index must be a non-negative integer, got {frame_index!r}."
            )
        target = self.graph_dir(graph_name) / f"frame_{int(frame_index)}"
        return self._write_dir(target, list(records), list(params) if frame_index == 0 else [])

    def write_tensors(
        self,
        graph_name: str,
        records: Iterable[DumpRecord],
        params: Iterable[DumpRecord] = (),
    ) -> Path:
        """Write ``<root>/<graph>/`` (no frames, the CNN flow) atomically; return its path.

        The whole graph directory is replaced, including any frames written earlier.
        """
        return self._write_dir(self.graph_dir(graph_name), list(records), list(params))

    def _render(
        self, records: list[DumpRecord], params: list[DumpRecord]
    ) -> tuple[dict[str, bytes], str]:
        """Compute every file's bytes (and shape.txt) before touching the disk."""
        files: dict[str, bytes] = {}
        owners: dict[str, str] = {}
        ext = "." + self.data_format

        def add(file_name: str, owner: str, payload: bytes) -> None:
            if file_name in owners:
                raise DeployCheckError(
                    f"names '{owners[file_name]}' and '{owner}' both map to the dump file "
                    f"'{file_name}'; rename one of them."
                )
            owners[file_name] = owner
            files[file_name] = payload

        owners[_SHAPE_FILE + ".txt"] = "<shape.txt>"
        shape_lines = []
        for is_param, record_list in ((True, params), (False, records)):
            for record in record_list:
                if not isinstance(record, (tuple, list)) or len(record) != 4:
                    raise DeployCheckError(
                        f"a dump record must be (name, data, bit_width, fix_pos), got {record!r}."
                    )
                name, data, bit_width, fix_pos = record
                stem = dump_file_stem(name)
                array = np.asarray(data)
                if array.dtype.kind not in "biuf":
                    raise DeployCheckError(
                        f"node '{name}': data of dtype {array.dtype} is not numeric."
                    )
                if self.data_format == "txt":
                    float_bytes = _float_text(array).encode("ascii")
                else:
                    float_bytes = array.astype("<f4").reshape(-1).tobytes()
                add(stem + ext, name, float_bytes)
                if (bit_width is None) != (fix_pos is None):
                    raise DeployCheckError(
                        f"node '{name}': bit_width and fix_pos must both be given or both be None, "
                        f"got ({bit_width!r}, {fix_pos!r})."
                    )
                if bit_width is not None:
                    codes = fix_codes(array, bit_width, fix_pos, name, self.mixed_widths)
                    if self.data_format == "txt":
                        fix_bytes = _int_text(codes).encode("ascii")
                    elif bit_width <= 4:
                        fix_bytes = pack_nibbles(codes).tobytes()
                    else:
                        fix_bytes = codes.tobytes()
                    add(stem + _FIX_SUFFIX + ext, name, fix_bytes)
                if not is_param:
                    shape_lines.append(f"{format_shape(array.shape, self.shape_style)}: {name}\n")
        return files, "".join(shape_lines)

    def _write_dir(
        self, target: Path, records: list[DumpRecord], params: list[DumpRecord]
    ) -> Path:
        files, shape_text = self._render(records, params)
        if self.batch is not None:
            self._fill(self.batch.directory(target), files, shape_text)
            return target
        with AtomicBatch() as batch:
            self._fill(batch.directory(target), files, shape_text)
        return target

    @staticmethod
    def _fill(directory: Path, files: dict[str, bytes], shape_text: str) -> None:
        for file_name, payload in files.items():
            (directory / file_name).write_bytes(payload)
        (directory / (_SHAPE_FILE + ".txt")).write_bytes(shape_text.encode("utf-8"))


if __name__ == "__main__":  # `python -m nndct_shared.deploy_check diff A B` (nndct_shared.deploy_diff)
    from nndct_shared.deploy_diff import main

    raise SystemExit(main())
