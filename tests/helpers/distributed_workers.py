"""What each gloo rank of the torch.distributed tests runs (see distributed_ranks.spawn_ranks).

`spec` is a dict prepared by the test process: data and state_dict files in the workdir, the
calibration cases (name -> config file), and every rank's shard as a list of batch index ranges.
A rank's output directory is `<workdir>/<case>/rank<r>`, one per rank, so that a file written by
a rank other than 0 would be seen (in real use every rank passes the same output_dir).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from helpers.distributed_ranks import cnn_models, expect_error

CPU = torch.device("cpu")


def _batches(x: torch.Tensor, ranges: list[tuple[int, int]]):
    for start, stop in ranges:
        yield x[start:stop]


def load_lstm_model(path: Path):
    from torch import nn

    class Classifier(nn.Module):  # the LSTM example's architecture (examples/lstm/pytorch/model.py)
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(12, 32, batch_first=True)
            self.classifier = nn.Linear(32, 9)

        def forward(self, x):
            return self.classifier(self.lstm(x)[0][:, -1, :])

    model = Classifier()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def calibrate_cnn(rank: int, workdir: Path, spec: dict[str, Any], case: str, config: str,
                  calib_feedback: str | None = None, shard: list | None = None):
    """One calibration of the CNN case on this rank's shard; returns the quantizer."""
    from pytorch_nndct.apis import torch_quantizer

    model = cnn_models().DigitsCNN()
    model.load_state_dict(torch.load(workdir / "cnn.pt", weights_only=True))
    x = torch.load(workdir / "cnn_x.pt", weights_only=True)
    quantizer = torch_quantizer("calib", model.eval(), x[:1], output_dir=str(workdir / case / f"rank{rank}"),
                                device=CPU, quant_config_file=config, calib_feedback=calib_feedback)
    with torch.no_grad():
        for batch in _batches(x, spec["cnn_shards"][rank] if shard is None else shard):
            quantizer.quant_model(batch)
    return quantizer


def union_worker(rank: int, world: int, workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Calibrate every CNN case and the LSTM on this rank's shard, then run test mode and every
    export on every rank (only rank 0 may write)."""
    import torch.distributed as dist

    from pytorch_nndct.apis import torch_quantizer

    result: dict[str, Any] = {"cnn": {}, "returned": {}}
    for case, config in spec["cases"].items():
        quantizer = calibrate_cnn(rank, workdir, spec, case, config)
        result["returned"][case] = quantizer.export_quant_config()
        result["cnn"][case] = quantizer.runtime.calibrated()
        if case == spec["test_case"]:
            test_model_bias = {k: v.clone() for k, v in quantizer.quant_model.state_dict().items()}
            result["corrected_state"] = test_model_bias

    # LSTM flow (the example's model, JapaneseVowels sequences)
    x_seq = torch.load(workdir / "lstm_x.pt", weights_only=True)
    lstm = load_lstm_model(workdir / "lstm.pt")
    calib_dir = workdir / "lstm" / f"rank{rank}"
    quantizer = torch_quantizer("calib", lstm, bitwidth=16, lstm=True, output_dir=str(calib_dir), device=CPU)
    with torch.no_grad():
        for batch in _batches(x_seq, spec["lstm_shards"][rank]):
            quantizer.quant_model(batch)
    result["returned"]["lstm"] = quantizer.export_quant_config()
    result["lstm"] = [cell.calibration.aligned() for cell in quantizer.session.cells]

    # test mode: ranks other than 0 read a copy of rank 0's result in their own directory
    dist.barrier()
    test_dirs = {}
    for flow, source in (("cnn", workdir / spec["test_case"] / "rank0"), ("lstm", workdir / "lstm" / "rank0")):
        test_dirs[flow] = source if rank == 0 else workdir / f"test_{flow}" / f"rank{rank}"
        if rank:
            test_dirs[flow].mkdir(parents=True)
            for name in ("quant_info.json", "bias_corr.pth"):
                if (source / name).is_file():
                    shutil.copy(source / name, test_dirs[flow] / name)
    dist.barrier()
    result["before_test"] = {flow: sorted(p.name for p in d.iterdir()) for flow, d in test_dirs.items()}
    model = cnn_models().DigitsCNN()
    model.load_state_dict(torch.load(workdir / "cnn.pt", weights_only=True))
    x = torch.load(workdir / "cnn_x.pt", weights_only=True)
    tester = torch_quantizer("test", model.eval(), x[:1], output_dir=str(test_dirs["cnn"]), device=CPU,
                             quant_config_file=spec["cases"][spec["test_case"]])
    with torch.no_grad():
        for batch in _batches(x, spec["cnn_shards"][rank]):
            tester.quant_model(batch)
        if rank == 0:
            tester.quant_model(x[spec["export_sample"]:spec["export_sample"] + 1])
    exports = workdir / "cnn_exports" / f"rank{rank}"
    result["returned"]["test"] = [tester.export_xmodel(str(exports), deploy_check=True),
                                  tester.export_onnx_model(str(exports)),
                                  tester.export_torch_script(str(exports))]
    lstm_tester = torch_quantizer("test", load_lstm_model(workdir / "lstm.pt"), bitwidth=16, lstm=True,
                                  output_dir=str(test_dirs["lstm"]), device=CPU)
    with torch.no_grad():
        for batch in _batches(x_seq, spec["lstm_shards"][rank]):
            lstm_tester.quant_model(batch)
    result["returned"]["lstm_test"] = lstm_tester.export_xmodel(str(workdir / "lstm_exports" / f"rank{rank}"),
                                                                deploy_check=True)
    return result


def errors_worker(rank: int, world: int, workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Every catalogued failure of a distributed calibration; the timeout comes last (it breaks
    the process group)."""
    import time

    from pytorch_nndct.apis import torch_quantizer

    ids: dict[str, Any] = {}
    config = spec["config"]
    # a rank with another configuration (bit width 6 on rank 1)
    other = spec["config_6bit"] if rank == 1 else config
    quantizer = calibrate_cnn(rank, workdir, spec, "mismatch", other)
    ids["mismatch"] = expect_error(quantizer.export_quant_config)
    # the reference's running feedback cannot be merged
    ids["running"] = expect_error(lambda: calibrate_cnn(rank, workdir, spec, "running", config, "running"))
    # no rank calibrated at all
    quantizer = calibrate_cnn(rank, workdir, spec, "nothing", config, shard=[])
    ids["nothing"] = expect_error(quantizer.export_quant_config)
    # fast finetune on several ranks
    quantizer = calibrate_cnn(rank, workdir, spec, "finetune", config, shard=[])
    x = torch.load(workdir / "cnn_x.pt", weights_only=True)
    ids["finetune"] = expect_error(lambda: quantizer.fast_finetune(lambda: quantizer.quant_model(x[:10]), ()))
    # calibrating again after the merge
    quantizer = calibrate_cnn(rank, workdir, spec, "again", config)
    quantizer.export_quant_config()
    quantizer.export_quant_config()  # nothing new anywhere: the same result again
    if rank == 1:
        with torch.no_grad():
            quantizer.quant_model(x[:10])
    ids["again"] = expect_error(quantizer.export_quant_config)
    # rank 0 writes the test-mode exports but never ran a forward pass (rank 1 did)
    model = cnn_models().DigitsCNN()
    model.load_state_dict(torch.load(workdir / "cnn.pt", weights_only=True))
    tester = torch_quantizer("test", model.eval(), x[:1], output_dir=str(workdir / "again" / "rank0"),
                             device=CPU, quant_config_file=config)
    if rank == 1:
        with torch.no_grad():
            tester.quant_model(x[:1])
        ids["test_export"] = tester.export_xmodel(str(workdir / "test_export"))
    else:
        ids["test_export"] = expect_error(lambda: tester.export_xmodel(str(workdir / "test_export")))
    # the timeout: rank 1 never reaches export_quant_config()
    quantizer = calibrate_cnn(rank, workdir, spec, "timeout", config)
    if rank == 0:
        started = time.monotonic()
        ids["timeout"] = expect_error(quantizer.export_quant_config)
        ids["timeout_s"] = time.monotonic() - started
    else:
        time.sleep(spec["timeout_s"] + 2)
    return ids


def qat_worker(rank: int, world: int, workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """QAT of the QAT tests' ResNetlet under DistributedDataParallel, each rank on its own
    batches; returns what the test compares across ranks."""
    import sys

    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel

    from pytorch_nndct import QatProcessor

    qat_dir = str(Path(__file__).resolve().parents[1] / "pytorch_nndct" / "qat")
    if qat_dir not in sys.path:
        sys.path.insert(0, qat_dir)
    import qat_models

    model = qat_models.ResNetlet()
    model.load_state_dict(torch.load(workdir / "float.pt", weights_only=True))
    x, y, x_test = (torch.load(workdir / f"{name}.pt", weights_only=True) for name in ("x", "y", "x_test"))
    processor = QatProcessor(model.eval(), (x[:1],), bitwidth=8, device="cpu")
    trainable = processor.trainable_model()
    ddp = DistributedDataParallel(trainable)
    optimizer = torch.optim.Adam([{"params": trainable.quantizer_parameters(), "lr": 1e-2},
                                  {"params": trainable.non_quantizer_parameters(), "lr": 1e-3}])
    ddp.train()
    first_fix = None
    for start, stop in spec["shards"][rank]:
        loss = F.cross_entropy(ddp(x[start:stop] * spec["scales"][rank]), y[start:stop])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if first_fix is None:
            first_fix = trainable.fix_positions()
    ddp.eval()
    with torch.no_grad():
        trained_out = trainable(x_test)
    out_dir = workdir / "qat" / f"rank{rank}"
    deployable = processor.to_deployable(ddp, str(out_dir))
    with torch.no_grad():
        deployable_out = deployable(x_test)
    return {"thresholds": {n: p.detach().clone() for n, p in trainable.named_quantizers()},
            "weights": {k: v.detach().clone() for k, v in trainable.net.state_dict().items()},
            "first_fix": first_fix, "fix": trainable.fix_positions(),
            "trained_out": trained_out, "deployable_out": deployable_out}


def load_rnn_model(kind: str, path: Path):
    """The GRU example's classifier ("gru") or the LSTM + GRU model ("mixed") with the weights of
    `path` (a state_dict the test process saved)."""
    from helpers.rnn_models import GruClassifier, LstmGruClassifier

    model = GruClassifier() if kind == "gru" else LstmGruClassifier()
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def calibrate_rnn(kind: str, workdir: Path, output_dir: Path, batches: list[tuple[int, int]],
                  calib_feedback: str | None = None):
    """A recurrent-flow calibration of model `kind` on `batches` of the workdir's sequences."""
    from pytorch_nndct.apis import torch_quantizer

    x_seq = torch.load(workdir / "seq_x.pt", weights_only=True)
    quantizer = torch_quantizer("calib", load_rnn_model(kind, workdir / f"{kind}.pt"), bitwidth=16, lstm=True,
                                output_dir=str(output_dir), device=CPU, calib_feedback=calib_feedback)
    with torch.no_grad():
        for batch in _batches(x_seq, batches):
            quantizer.quant_model(batch)
    return quantizer


def rnn_union_worker(rank: int, world: int, workdir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Calibrate each recurrent model of `spec["kinds"]` on this rank's shard (default feedback:
    "batch" under the process group) and export; returns what export_quant_config() returned and
    the merged, aligned fix positions of every cell."""
    result: dict[str, Any] = {"returned": {}, "fix": {}}
    for kind in spec["kinds"]:
        quantizer = calibrate_rnn(kind, workdir, workdir / kind / f"rank{rank}", spec["shards"][rank])
        result["returned"][kind] = quantizer.export_quant_config()
        result["fix"][kind] = [cell.calibration.aligned() for cell in quantizer.session.cells]
    return result
