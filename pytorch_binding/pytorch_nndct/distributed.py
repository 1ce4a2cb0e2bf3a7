"""Quantizing under torch.distributed: the transport, and the hooks the flows call.

Every rank creates the same quantizer and forwards its own shard of the calibration data; the
merge itself is framework-neutral (``nndct_shared.collective``, the observers' ``to_state`` /
``merge``, ``CellCalibration.merge_states``); this module only moves the states between the
processes, with ``torch.distributed.all_gather_object`` on the default process group, and wires
the flows to it:

- calibration: ``calib_feedback`` (``default_feedback``: "batch" under a process group, so every
  batch is fake-quantized at its own statistics and the ranks' results merge into exactly what
  one process computes on the union of the shards); ``merge_calibration`` in the CNN flow's
  ``export_quant_config()`` (the LSTM flow's session merges through ``TorchCollective``); bias
  correction on the union's first samples (``bias_correction_inputs``);
- outputs: only rank 0 writes (``skips_writing``, ``nndct_shared.collective.write_dir``);
- QAT: the first forward pass initializes each threshold from every rank's batch
  (``merge_observer``), so DistributedDataParallel starts and stays in sync;
- fast finetune refuses to run on several ranks (``refuse_fast_finetune``).

Transport: gloo (CPU) is tested; nccl goes through the same ``all_gather_object`` call, which
needs ``torch.cuda.set_device(local_rank)`` before the quantizer is created, and is untested
here (no GPU). Before each gather, gloo groups run ``monitored_barrier``, so a rank that never
arrives is named in the DIST_TIMEOUT error after the group's timeout.
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from nndct_shared.algorithms import ChannelMeanError
from nndct_shared.calibration.merge import merge_state_maps, merge_states
from nndct_shared.collective import LOCAL, Collective, digest, gather_checked
from nndct_shared.messages import error, note

__all__ = ["FEEDBACKS", "TorchCollective", "apply_calib_feedback", "bias_correction_inputs", "check_calib_feedback",
           "current_collective", "default_feedback", "merge_calibration", "merge_observer",
           "refuse_fast_finetune", "skips_writing"]

FEEDBACKS = ("running", "batch")
"""calib_feedback values: "running" (the reference: every call is fake-quantized at the statistics
of every call so far) and "batch" (each call at the statistics of that call alone)."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _group_timeout(group: Any) -> datetime.timedelta:
    """The timeout the process group was created with (init_process_group(timeout=...)).

    monitored_barrier does not default to it (it waits 30 minutes), so it is passed explicitly;
    torch keeps it on the backend's options, a private attribute: the default is the fallback."""
    try:
        pg = group if group is not None else dist.distributed_c10d._get_default_group()
        timeout = pg._get_backend(torch.device("cpu")).options._timeout
        if isinstance(timeout, datetime.timedelta):
            return timeout
    except (AttributeError, RuntimeError, ValueError):
        pass
    return dist.default_pg_timeout


class TorchCollective(Collective):
    """The default torch.distributed process group (or ``group``) as a ``Collective``."""

    def __init__(self, group: Any = None) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.backend = str(dist.get_backend(group))
        self.timeout = _group_timeout(group) if self.backend == "gloo" else None

    def all_gather(self, obj: Any, action: str) -> list[Any]:
        if self.world_size == 1:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        try:
            if self.backend == "gloo":  # names the ranks that do not arrive
                dist.monitored_barrier(group=self.group, timeout=self.timeout, wait_all_ranks=True)
            dist.all_gather_object(gathered, obj, group=self.group)
        except RuntimeError as exc:  # timeouts and lost peers (DistError is a RuntimeError)
            raise error("DIST_TIMEOUT", action=action, rank=self.rank, world=self.world_size,
                        reason=_first_line(exc)) from exc
        return gathered


def current_collective() -> Collective:
    """The default process group when torch.distributed is initialized, else one process."""
    if dist.is_available() and dist.is_initialized():
        return TorchCollective()
    return LOCAL


def default_feedback() -> str:
    """"batch" under an initialized process group (even of one rank, so the result does not
    depend on the number of ranks), "running" (the reference) otherwise."""
    return "batch" if dist.is_available() and dist.is_initialized() else "running"


def check_calib_feedback(value: str | None) -> None:
    """CALIB_FEEDBACK unless ``value`` is None (the default) or allowed here."""
    if value is None:
        return
    if value not in FEEDBACKS:
        raise error("CALIB_FEEDBACK", value=value, reason=f"it must be one of {', '.join(map(repr, FEEDBACKS))}")
    collective = current_collective()
    if value == "running" and collective.spans_processes:
        raise error("CALIB_FEEDBACK", value=value,
                    reason=f"under torch.distributed ({collective.world_size} ranks) each rank's "
                           "statistics would depend on the batches it saw before, so the ranks "
                           "could not be merged into one process's result")


def apply_calib_feedback(quantizer: Any, value: str | None) -> None:
    """torch_quantizer(calib_feedback=...): give a checked value to the quantizer's calibration
    (the CNN runtime, or every QuantLSTM); None keeps ``default_feedback()``."""
    check_calib_feedback(value)
    if value is None:
        return
    if hasattr(quantizer, "runtime"):
        quantizer.runtime.feedback = value
    for qrnn in getattr(quantizer, "quant_rnns", []):
        qrnn.calib_feedback = value


def skips_writing(action: str) -> bool:
    """True on a rank other than 0 under torch.distributed: it writes nothing for ``action``
    (rank 0 writes the files), and says so in a note."""
    collective = current_collective()
    if collective.is_writer:
        return False
    note(f"=>{action}: rank {collective.rank} of {collective.world_size} writes nothing; "
         "rank 0 writes the files.")
    return True


def refuse_fast_finetune() -> None:
    """DIST_FAST_FINETUNE on more than one rank (see the catalogue entry for what to do)."""
    collective = current_collective()
    if collective.spans_processes:
        raise error("DIST_FAST_FINETUNE", world=collective.world_size)


# --- the CNN flow's calibration -------------------------------------------------------------

def _cnn_fingerprint(quantizer: Any) -> dict[str, str]:
    """What every rank must agree on before its statistics can be merged."""
    graph = quantizer.captured.graph
    nodes = [(n.name, n.op_type, list(n.inputs), list(n.outputs or []),
              sorted((role, t.name, t.shape) for role, t in n.params.items())) for n in graph]
    weights = sorted((k, v.detach().to("cpu").numpy()) for k, v in quantizer.quant_model.state_dict().items())
    settings = sorted(dataclasses.astuple(s) for s in quantizer.runtime.settings.values())
    steps = quantizer.post_training
    return {
        "the model (captured graph)": digest(nodes),
        "the weights": digest(weights),
        "the quantization settings (bitwidth, quant_config_file, target)": digest(settings),
        "calib_feedback": quantizer.runtime.feedback,
        "the post-training steps (include_cle, include_bias_corr, fast finetune)":
            digest(steps.cle, steps.bias_corr, steps.finetuned),
    }


def merge_calibration(quantizer: Any, action: str = "export_quant_config()") -> None:
    """Merge every rank's calibration statistics into every rank's runtime (a collective; a
    no-op in one process). Afterwards every rank holds the same observers, so the same fix
    positions, as one process that calibrated on all the ranks' batches."""
    collective = current_collective()
    if not collective.spans_processes:
        return
    runtime = quantizer.runtime
    if runtime.merged_forwards is None:
        payload: Any = {"observers": {name: obs.to_state() for name, obs in runtime.observers.items()},
                        "forwards": runtime.forwards, "nonfinite": dict(runtime.nonfinite),
                        "skipped_forwards": runtime.skipped_forwards,
                        "nonfinite_inputs": dict(runtime.nonfinite_inputs)}
    else:  # merged by an earlier export: only check that no rank calibrated since
        payload = runtime.forwards - runtime.merged_forwards
    gathered = gather_checked(collective, _cnn_fingerprint(quantizer), payload, action)
    # equal on every rank now; "running" can only have been set by hand (torch_quantizer refuses it)
    check_calib_feedback(runtime.feedback)
    if runtime.merged_forwards is not None:
        for rank, more in enumerate(gathered):
            if more:
                raise error("DIST_CALIB_AFTER_EXPORT", rank=rank, more=f"{more} more forward pass(es)")
        return
    merged = merge_state_maps([p["observers"] for p in gathered])
    runtime.observers = {name: merged[name] for name in runtime.settings if name in merged}
    runtime.forwards = sum(p["forwards"] for p in gathered)
    nonfinite: dict[str, int] = {}
    for name in runtime.settings:
        counts = [p["nonfinite"][name] for p in gathered if name in p["nonfinite"]]
        if counts:  # a param is the same tensor on every rank; activations add up
            nonfinite[name] = max(counts) if runtime.settings[name].is_param else sum(counts)
    runtime.nonfinite = nonfinite
    # batches left out for NaN/inf inputs: calibrated() refuses only when every rank's were
    runtime.skipped_forwards = sum(p["skipped_forwards"] for p in gathered)
    nonfinite_inputs: dict[str, int] = {}
    for p in gathered:
        for name, count in p["nonfinite_inputs"].items():
            nonfinite_inputs[name] = nonfinite_inputs.get(name, 0) + count
    runtime.nonfinite_inputs = nonfinite_inputs
    if not gathered[collective.rank]["forwards"] and runtime.forwards:
        note(f"=>{action}: rank {collective.rank} calibrated no batch; it holds the statistics of the "
             f"other ranks now.")
    runtime.merged_forwards = runtime.forwards


class _RankOrderMeans:
    """Bias correction's per-batch output errors of every rank, merged in rank then batch order
    (the order of one process that calibrated on rank 0's batches, then rank 1's, ...)."""

    def __init__(self, collective: Collective, action: str) -> None:
        self.collective = collective
        self.action = action

    def __call__(self, parts: Sequence[ChannelMeanError]) -> ChannelMeanError:
        total = ChannelMeanError(channel_axis=1)
        for states in self.collective.all_gather([p.to_state() for p in parts], self.action):
            for state in states:
                total.merge(ChannelMeanError.from_state(state))
        return total


def _first_samples(batches: Sequence[tuple[torch.Tensor, ...]], room: int) -> list[tuple[torch.Tensor, ...]]:
    kept = []
    for batch in batches:
        if room <= 0:
            break
        size = int(batch[0].shape[0]) if batch[0].dim() else 1
        kept.append(tuple(t[:room] if t.dim() else t for t in batch))
        room -= size
    return kept


def bias_correction_inputs(batches: list, count: int, max_samples: int,
                           action: str = "export_quant_config() (bias correction)"
                           ) -> tuple[list, int, Callable[[Sequence[ChannelMeanError]], ChannelMeanError] | None]:
    """(this rank's share of the calibration inputs that bias correction uses, the number of
    samples they are over all ranks, the merge of per-batch errors or None in one process).

    One process keeps the first ``max_samples`` samples it calibrates on; the union of the
    shards in rank order keeps rank 0's first samples, then rank 1's, ... (a collective).
    """
    collective = current_collective()
    if not collective.spans_processes:
        return batches, count, None
    counts = collective.all_gather(count, action)
    room = max(0, max_samples - sum(counts[:collective.rank]))
    return _first_samples(batches, room), min(max_samples, sum(counts)), _RankOrderMeans(collective, action)


# --- QAT ------------------------------------------------------------------------------------

def merge_observer(observer: Any, settings: Any, action: str) -> Any:
    """The observer of every rank's data (a collective under torch.distributed, ``observer``
    itself in one process): QAT initializes a threshold from it on every rank alike."""
    collective = current_collective()
    if not collective.spans_processes:
        return observer
    fingerprint = {"the quantized tensor and its settings": digest(dataclasses.astuple(settings))}
    return merge_states(gather_checked(collective, fingerprint, observer.to_state(), action))
