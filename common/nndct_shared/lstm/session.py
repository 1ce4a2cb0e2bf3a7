"""The RNN quantization flow shared by both front ends: calib -> quant_info.json -> test ->
xmodel and deploy-check dumps.

A front end finds the LSTMs and GRUs of the user's model, builds one `QuantizedLstmStack` /
`QuantizedGruStack` per RNN and registers it here; everything written to `output_dir` is then
produced by this module, which is why the PyTorch and Keras flows write the same files for the
same weights. The session sees cells only through `cell_base.QuantizedCell`'s interface.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic_io import AtomicBatch
from ..deploy_check import DeployCheckWriter, dump_file_stem
from ..messages import error
from ..output_dir import writing_to
from ..progress import progress
from ..quant_info import QuantInfo, read_quant_info, write_quant_info
from .cell_base import QuantizedCell
from .codegen import write_cell_source
from .naming import scoped
from .stack import QuantizedLstmStack, RunMode

QUANT_INFO_FILE = "quant_info.json"
DUMP_DIR = "deploy_check_data_int"
XMODEL_DIR = "xmodel"


@dataclass
class FirstBatch:
    """The first batch a stack saw in test mode (batch element 0 only), replayed for the dumps."""

    x: np.ndarray
    lengths: np.ndarray | None
    h0: np.ndarray | None
    c0: np.ndarray | None


class LstmQuantSession:
    """All quantized LSTMs and GRUs of one model and the files of one output directory.

    A stack is anything with `prefix`, `cells` (QuantizedCell objects) and
    `record(x, lengths, h0, c0)` (a GRU stack takes and ignores c0 = None)."""

    def __init__(self, output_dir: str | Path, mode: RunMode, bit_width: int) -> None:
        self.output_dir = Path(output_dir)
        self.mode = mode
        self.bit_width = bit_width
        self.stacks: list[QuantizedLstmStack] = []
        self._prepare_output_dir()

    def _prepare_output_dir(self) -> None:
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise error("OUTPUT_DIR", path=str(self.output_dir), reason=str(exc)) from exc
        if not _is_writable(self.output_dir):
            raise error("OUTPUT_DIR", path=str(self.output_dir), reason="the directory is not writable")

    @property
    def cells(self) -> list[QuantizedCell]:
        return [cell for stack in self.stacks for cell in stack.cells]

    def add_stack(self, stack: QuantizedLstmStack) -> None:
        names = {c.graph_name for c in self.cells}
        clash = [c.graph_name for c in stack.cells if c.graph_name in names]
        if clash:
            raise error("UNSUPPORTED_RNN", module=stack.prefix,
                        feature=f"cell graph names {clash} that another RNN of the model already has")
        self.stacks.append(stack)
        with writing_to(self.output_dir):
            for cell in stack.cells:
                write_cell_source(self.output_dir, cell.graph_name, cell.module_source())

    # --------------------------------------------------------------------------- quant_info.json
    def export_quant_config(self) -> Path:
        """Calib mode: align the calibrated fix positions and write quant_info.json."""
        if self.mode != RunMode.CALIB:
            raise error("EXPORT_MODE", action="export_quant_config()", required="calib", mode=self.mode.value)
        never_run = [c.graph_name for c in self.cells if not c.calibration.param]
        if never_run:
            raise error("NO_FORWARD", action=f"export_quant_config() (never run: {', '.join(never_run)})")
        qi = QuantInfo()
        for cell in self.cells:
            params, outputs = cell.calibration.aligned().quant_info_entries(cell.graph_name)
            qi.param.update(params)
            qi.output.update(outputs)
        with writing_to(self.output_dir):
            return write_quant_info(qi, self.output_dir / QUANT_INFO_FILE)

    def load_quant_config(self) -> None:
        """Test mode: read quant_info.json and give every cell its fix positions."""
        path = self.output_dir / QUANT_INFO_FILE
        if not path.is_file():
            raise error("NO_CALIB_RESULT", path=str(path))
        qi = read_quant_info(path)  # a broken file raises QUANT_INFO_CORRUPT naming it
        expected = {scoped(c.graph_name, n) for c in self.cells
                    for n in (*c.definition.param_names, *c.definition.node_names)}
        have = set(qi.param) | set(qi.output)
        missing, unexpected = sorted(expected - have), sorted(have - expected)
        if missing or unexpected:
            raise error("CALIB_RESULT_MISMATCH", path=str(path), n_missing=len(missing),
                        missing=_first(missing), n_unexpected=len(unexpected), unexpected=_first(unexpected))
        for cell in self.cells:
            try:
                cell.load_fix_positions(cell.fix_positions_from_quant_info(qi.param, qi.output))
            except ValueError as exc:
                raise error("QUANT_INFO_CORRUPT", path=str(path), reason=str(exc)) from exc

    # --------------------------------------------------------------------------- deploy files
    def export_xmodel(self, output_dir: str | Path | None, first_batches: dict[int, FirstBatch] | None,
                      deploy_check: bool) -> list[Path]:
        """Test mode: one `<graph>_int.xmodel` per cell, and with `deploy_check` the per-frame
        txt dumps of batch element 0 of the first batch every LSTM saw.

        All files are staged first and swapped in together: an export that fails (a file in
        the way, a full disk) raises OUTPUT_DIR and leaves the previous export untouched."""
        from ..xmodel import xgraph_to_bytes

        if self.mode != RunMode.TEST:
            raise error("EXPORT_MODE", action="export_xmodel()", required="test", mode=self.mode.value)
        if deploy_check:
            self._check_first_batches(first_batches, "export_xmodel(deploy_check=True)")
        out_dir = Path(output_dir) if output_dir is not None else self.output_dir
        with writing_to(out_dir), AtomicBatch() as batch:
            xdir = batch.make_dirs(out_dir / XMODEL_DIR)
            written = [
                batch.write_bytes(xdir / f"{dump_file_stem(cell.graph_name)}_int.xmodel", xgraph_to_bytes(cell.xgraph()))
                for cell in progress(self.cells, "export xmodel", unit="cell")
            ]
            if deploy_check:
                written += self.dump_frames(out_dir, first_batches, "export_xmodel(deploy_check=True)", batch)
        return written

    def _check_first_batches(self, first_batches: dict[int, FirstBatch] | None, action: str) -> None:
        if self.mode != RunMode.TEST:
            raise error("EXPORT_MODE", action=action, required="test", mode=self.mode.value)
        missing = [s.prefix for k, s in enumerate(self.stacks) if k not in (first_batches or {})]
        if missing:
            raise error("NO_FORWARD", action=f"{action} (no input seen by {', '.join(missing)})")

    def dump_frames(self, out_dir: Path, first_batches: dict[int, FirstBatch] | None, action: str,
                    batch: AtomicBatch | None = None) -> list[Path]:
        """The per-time-step txt dumps (`deploy_check_data_int/<graph>/frame_<t>/`) of batch
        element 0 of each stack's recorded batch; `first_batches` is keyed by stack index.
        With `batch` the frames are only staged there (the caller commits); without, they are
        written all or nothing."""
        self._check_first_batches(first_batches, action)
        if batch is None:
            with writing_to(Path(out_dir)), AtomicBatch() as own_batch:
                return self.dump_frames(out_dir, first_batches, action, own_batch)
        first_batches = first_batches or {}
        writer = DeployCheckWriter(Path(out_dir) / DUMP_DIR, data_format="txt", batch=batch)
        written: list[Path] = []
        for k, stack in enumerate(self.stacks):
            fb = first_batches[k]
            for graph_name, record in stack.record(fb.x, fb.lengths, fb.h0, fb.c0).items():
                cell = next(c for c in stack.cells if c.graph_name == graph_name)
                written += write_cell_frames(writer, cell, record)
        return written


def write_cell_frames(writer: DeployCheckWriter, cell: QuantizedCell, record) -> list[Path]:
    """One `frame_<t>` directory per processed step: every node's value and code, and in frame 0
    the parameters, exactly as the reference's DeployChecker in txt mode."""
    fix = record.fix
    bw = fix.bit_width
    params = []
    for name, codes in cell.param_codes().items():
        fp = fix.param[name]
        params.append((scoped(cell.graph_name, name), np.ldexp(codes.astype(np.float64), -fp), bw, fp))
    paths = []
    for t in progress(range(record.steps), f"dump {cell.graph_name}", unit="frame"):
        records = []
        for i, name in enumerate(cell.definition.node_names):
            codes = record.codes[name][t:t + 1]
            fp = fix.node[i]
            records.append((scoped(cell.graph_name, name), np.ldexp(codes.astype(np.float64), -fp), bw, fp))
        paths.append(writer.write_frame(cell.graph_name, t, records, params))
    return paths


def _first(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "") if names else "none"


def _is_writable(path: Path) -> bool:
    probe = path / ".nndct_write_probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False
