"""Rank processes for the torch.distributed tests (spawned with torch.multiprocessing).

Each test starts a few gloo ranks on this machine with `spawn_ranks(worker, world, workdir,
spec)`: every rank joins a process group through a file store in `workdir` (no TCP port to
collide with other test runs), runs `worker(rank, world, workdir, spec)` with one thread (so
that one process's float results are bit-comparable with the test process's), and pickles what
the worker returns to `workdir/rank<r>.pkl`. Catalogued errors a worker expects are recorded by
`expect_error` instead of failing the rank, so the test can assert that every rank raised the
same message. The workers stay small: the models are trained once in the test process and
reach the ranks as state_dict files.
"""
from __future__ import annotations

import datetime
import json
import pickle
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

CNN_MODELS_DIR = Path(__file__).resolve().parents[1] / "pytorch_nndct" / "cnn"


def _rank_main(rank: int, worker: Callable, world: int, workdir: str, spec: Any, timeout_s: float) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{workdir}/store", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    try:
        result = worker(rank, world, Path(workdir), spec)
    except BaseException:
        (Path(workdir) / f"rank{rank}.error").write_text(traceback.format_exc())
        raise
    finally:
        try:
            dist.destroy_process_group()
        except Exception:  # a group broken by a timeout test cannot always be torn down
            pass
    with open(Path(workdir) / f"rank{rank}.pkl", "wb") as handle:
        pickle.dump(result, handle)


def spawn_ranks(worker: Callable, world: int, workdir: Path, spec: Any, timeout_s: float = 120.0) -> list[Any]:
    """Run `worker` on `world` gloo ranks; returns every rank's result (rank order)."""
    import torch.multiprocessing as mp

    workdir.mkdir(parents=True, exist_ok=True)
    try:
        mp.spawn(_rank_main, args=(worker, world, str(workdir), spec, timeout_s), nprocs=world, join=True)
    except Exception as exc:
        errors = "\n".join(p.read_text() for p in sorted(workdir.glob("rank*.error")))
        raise AssertionError(f"a rank failed: {exc}\n{errors}") from None
    results = []
    for rank in range(world):
        with open(workdir / f"rank{rank}.pkl", "rb") as handle:
            results.append(pickle.load(handle))
    return results


def expect_error(call: Callable[[], Any]) -> str:
    """Run `call`, which must raise a catalogued error; returns its message ID."""
    from nndct_shared.messages import NndctError

    try:
        call()
    except NndctError as exc:
        return exc.msg_id
    raise AssertionError("no catalogued error was raised")


def files_under(directory: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file below `directory` ({} if it does not exist)."""
    if not directory.exists():
        return {}
    from helpers.output_tree import visible_tree  # what a reader sees through the export store

    return {k: v for k, v in visible_tree(directory).items() if v is not None}


def cnn_models():
    """tests/pytorch_nndct/cnn/models.py (digits data and the small CNNs)."""
    if str(CNN_MODELS_DIR) not in sys.path:
        sys.path.insert(0, str(CNN_MODELS_DIR))
    import models

    return models


def write_config(path: Path, data: dict) -> str:
    """Write a quantization config dict as a JSON file; returns its path as the API takes it."""
    path.write_text(json.dumps(data))
    return str(path)


def save_digits_cnn(workdir: Path, epochs: int, samples: int) -> None:
    """Train the digits CNN in this process and leave what the ranks load: `cnn.pt` (its
    state_dict) and `cnn_x.pt` (the first `samples` training images)."""
    models = cnn_models()
    x_train, y_train, _, _ = models.digits_split()
    torch.manual_seed(0)
    torch.save(models.train(models.DigitsCNN(), x_train, y_train, epochs=epochs).state_dict(), workdir / "cnn.pt")
    torch.save(x_train[:samples].clone(), workdir / "cnn_x.pt")
