"""The RNN quantization flow shared by both front ends: calib -> quant_info.json -> test ->
xmodel and deploy-check dumps.

A front end finds the LSTMs and GRUs of the user's model, builds one `QuantizedLstmStack` /
`QuantizedGruStack` per RNN and registers it here; everything written to `output_dir` is then
produced by this module, which is why the PyTorch and Keras flows write the same files for the
same weights. The session sees cells only through `cell_base.QuantizedCell`'s interface.

Every write is one export unit (`nndct_shared.output_dir.staged_export`): the cells' `<graph>.py`
files together; quant_info.json; and a cell's xmodel together with its deploy-check directory
(`deploy_check_data_int/<graph>/`, owned whole: an export of 6 time steps leaves 6 frames, and an
export without dumps leaves none of an older export beside the new xmodel). Test mode checks
that the calibration result was made at this session's bit width (CALIB_BITWIDTH_MISMATCH).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..collective import LOCAL, Collective
from ..deploy_check import DEPLOY_CHECK_DIR as DUMP_DIR, DeployCheckWriter, DirectoryStager, dump_file_stem
from ..messages import error
from ..output_dir import checked_output_dir, staged_export
from ..progress import progress
from ..quant_info import QuantInfo
from ..quant_info_store import QuantInfoStore
from ..quant_mode import RunMode
from .cell_base import QuantizedCell
from .codegen import cell_module_file
from .naming import scoped
from .shard_merge import CellShards
from .stack import QuantizedLstmStack
from .width_config import WidthConfig

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

    def __init__(self, output_dir: str | Path, mode: RunMode, bit_width: int,
                 collective: Collective = LOCAL, widths: WidthConfig | None = None) -> None:
        self.output_dir = checked_output_dir(output_dir)
        self.mode = mode
        self.bit_width = bit_width
        self.widths = widths or WidthConfig(bit_width)
        self.stacks: list[QuantizedLstmStack] = []
        self.store = QuantInfoStore(self.output_dir)
        # Under several processes only the writer (rank 0) touches output_dir (see collective.py)
        self.collective = collective
        self.shards = CellShards(collective)
        self._prepare_output_dir()

    def _prepare_output_dir(self) -> None:
        if not self.collective.is_writer:
            return
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
        """Register a stack; its cells' names must differ from the others', also as file names
        (`a-b` and `a/b` are both written as `a_b`): NAME_COLLISION, before anything is written."""
        names = {c.graph_name for c in self.cells}
        clash = [c.graph_name for c in stack.cells if c.graph_name in names]
        if clash:
            raise error("UNSUPPORTED_RNN", module=stack.prefix,
                        feature=f"cell graph names {clash} that another RNN of the model already has")
        stems = {dump_file_stem(c.graph_name): c.graph_name for c in self.cells}
        for cell in stack.cells:
            other = stems.setdefault(dump_file_stem(cell.graph_name), cell.graph_name)
            if other != cell.graph_name:
                raise error("NAME_COLLISION", first=other, second=cell.graph_name,
                            stem=dump_file_stem(cell.graph_name))
        self._apply_widths(stack)
        self.stacks.append(stack)

    def _apply_widths(self, stack: QuantizedLstmStack) -> None:
        """Each cell's per-tensor widths from the config (mixed widths; README "Mixed bit widths
        in the recurrent flow"); without a config every tensor stays at the session's width."""
        if self.widths.is_default:
            return
        for cell in stack.cells:
            layer = int(cell.graph_name.rsplit("_layer_", 1)[1].split("_")[0])
            widths = self.widths.cell_widths(cell.definition, cell.graph_name, stack.prefix,
                                             getattr(stack, "module_path", None), layer, cell.reverse)
            if widths != cell.widths:
                cell.set_widths(widths)

    def check_widths_used(self) -> None:
        """After every stack is added: each rule of the width config selected some cell."""
        self.widths.check_all_used()

    def write_cell_modules(self) -> list[Path]:
        """`<output_dir>/<graph>.py` of every cell, as one export (the front end calls it once,
        after registering all stacks); nothing on a rank that does not write (torch.distributed)."""
        if not self.collective.is_writer:
            return []
        with staged_export(self.output_dir) as unit:
            return [unit.write_bytes(self.output_dir / name, data)
                    for name, data in (cell_module_file(c.graph_name, c.module_source()) for c in self.cells)]

    # --------------------------------------------------------------------------- quant_info.json
    def export_quant_config(self) -> Path | None:
        """Calib mode: align the calibrated fix positions and write quant_info.json. Under
        several processes (a collective call) the ranks' statistics are merged first, every
        rank gets the merged fix positions and only the writer writes (others return None)."""
        if self.mode != RunMode.CALIB:
            raise error("EXPORT_MODE", action="export_quant_config()", required="calib", mode=self.mode.value)
        self.shards.merge(self.cells, "export_quant_config()")
        never_run = [c.graph_name for c in self.cells if not c.calibration.param]
        if never_run:
            where = f" on any of the {self.collective.world_size} ranks" if self.collective.spans_processes else ""
            raise error("NO_FORWARD", action=f"export_quant_config() (never run{where}: {', '.join(never_run)})")
        qi = QuantInfo()
        for cell in self.cells:
            params, outputs = cell.calibration.aligned().quant_info_entries(cell.graph_name)
            qi.param.update(params)
            qi.output.update(outputs)
        if not self.collective.is_writer:
            return None
        return self.store.write(qi)

    def load_quant_config(self) -> None:
        """Test mode: read quant_info.json and give every cell its fix positions, which must be
        of this session's bit width."""
        # missing: NO_CALIB_RESULT; broken: QUANT_INFO_CORRUPT; another model's: CALIB_RESULT_MISMATCH
        qi = self.store.read([scoped(c.graph_name, n) for c in self.cells for n in c.definition.param_names],
                             [scoped(c.graph_name, n) for c in self.cells for n in c.definition.node_names])
        path = self.store.path
        fixes = []
        for cell in self.cells:
            d = cell.definition
            recorded = {n: qi.param[scoped(cell.graph_name, n)][0] for n in d.param_names}
            recorded |= {n: qi.output[scoped(cell.graph_name, n)][0] for n in d.node_names}
            widths = set(recorded.values())
            if len(widths) == 1 and cell.widths.is_uniform and self.bit_width not in widths:
                raise error("CALIB_BITWIDTH_MISMATCH", bitwidth=self.bit_width, path=str(path),
                            recorded=widths.pop(), cell=cell.graph_name)
            for name, width in recorded.items():
                if width != cell.widths.of(d, name):
                    raise error("RNN_WIDTH_MISMATCH", path=str(path), recorded=width,
                                tensor=scoped(cell.graph_name, name), configured=cell.widths.of(d, name))
            try:  # one width per cell, fix positions that width can hold
                fixes.append(cell.fix_positions_from_quant_info(qi.param, qi.output))
            except ValueError as exc:
                raise error("QUANT_INFO_CORRUPT", path=str(path), reason=str(exc)) from exc
        for cell, fix in zip(self.cells, fixes):
            cell.load_fix_positions(fix)

    # --------------------------------------------------------------------------- deploy files
    def export_xmodel(self, output_dir: str | Path | None, first_batches: dict[int, FirstBatch] | None,
                      deploy_check: bool, action: str = "export_xmodel(deploy_check=True)") -> list[Path]:
        """Test mode: one `xmodel/<graph>_int.xmodel` per cell, and with `deploy_check` the
        per-frame txt dumps of batch element 0 of the first batch every LSTM saw; returns the
        xmodel paths, then the frame directories.

        Each cell's xmodel and dump directory are one unit with the others': all are written
        aside and committed together, so an export that fails (a file in the way, a full disk)
        raises OUTPUT_DIR and one that is killed leaves the previous export whole. Without
        `deploy_check` the cells' dump directories are removed (an older export's dumps do not
        belong to the new xmodels)."""
        from ..xmodel import xgraph_to_bytes

        if self.mode != RunMode.TEST:
            raise error("EXPORT_MODE", action="export_xmodel()", required="test", mode=self.mode.value)
        if not self.collective.is_writer:
            return []
        if deploy_check:
            self._check_first_batches(first_batches, action)
        out_dir = self.output_dir if output_dir is None else checked_output_dir(output_dir)
        xmodels = [(out_dir / XMODEL_DIR / f"{dump_file_stem(cell.graph_name)}_int.xmodel",
                    xgraph_to_bytes(cell.xgraph()))
                   for cell in progress(self.cells, "export xmodel", unit="cell")]
        with staged_export(out_dir, owns=self._dump_dirs()) as unit:
            written = [unit.write_bytes(path, data) for path, data in xmodels]
            if deploy_check:
                written += self.dump_frames(out_dir, first_batches, action, unit)
        return written

    def _dump_dirs(self) -> list[str]:
        """The cells' dump directories (relative to an export directory): each is owned whole
        by an export of this session."""
        return [f"{DUMP_DIR}/{dump_file_stem(cell.graph_name)}" for cell in self.cells]

    def _check_first_batches(self, first_batches: dict[int, FirstBatch] | None, action: str) -> None:
        if self.mode != RunMode.TEST:
            raise error("EXPORT_MODE", action=action, required="test", mode=self.mode.value)
        missing = [s.prefix for k, s in enumerate(self.stacks) if k not in (first_batches or {})]
        if missing:
            raise error("NO_FORWARD", action=f"{action} (no input seen by {', '.join(missing)})")

    def dump_frames(self, out_dir: Path, first_batches: dict[int, FirstBatch] | None, action: str,
                    batch: DirectoryStager | None = None) -> list[Path]:
        """The per-time-step txt dumps (`deploy_check_data_int/<graph>/frame_<t>/`) of batch
        element 0 of each stack's recorded batch; `first_batches` is keyed by stack index.
        With `batch` the frames are only staged there (the caller commits); without, they are
        one export that replaces each cell's whole dump directory."""
        self._check_first_batches(first_batches, action)
        if batch is None:
            with staged_export(out_dir, owns=self._dump_dirs()) as unit:
                return self.dump_frames(unit.root, first_batches, action, unit)
        first_batches = first_batches or {}
        writer = DeployCheckWriter(Path(out_dir) / DUMP_DIR, data_format="txt", batch=batch, mixed_widths=True)
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
    params = []
    for name, codes in cell.param_codes().items():
        fp = fix.param[name]
        params.append((scoped(cell.graph_name, name), np.ldexp(codes.astype(np.float64), -fp), fix.param_width(name),
                       fp))
    paths = []
    for t in progress(range(record.steps), f"dump {cell.graph_name}", unit="frame"):
        records = []
        for i, name in enumerate(cell.definition.node_names):
            codes = record.codes[name][t:t + 1]
            fp = fix.node[i]
            records.append((scoped(cell.graph_name, name), np.ldexp(codes.astype(np.float64), -fp), fix.node_width(i),
                            fp))
        paths.append(writer.write_frame(cell.graph_name, t, records, params))
    return paths


def _is_writable(path: Path) -> bool:
    probe = path / ".nndct_write_probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False
