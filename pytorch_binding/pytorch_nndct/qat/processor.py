"""`QatProcessor`: quantization-aware training with the guide's API.

Flow (guide, "vai_q_pytorch QAT"):
1. `QatProcessor(model, inputs, bitwidth=8)` checks the QAT requirements on the model's trace
   (QuantStub present, `+`/`-` as functional modules) and captures it with the CNN flow.
2. `trainable_model()` returns a `QatModel`: the converted model with a learnable TQT quantizer
   (log2 threshold, straight-through gradients) on every tensor the fix plan quantizes.
3. `to_deployable(trained, output_dir)` turns the learned thresholds into integer fix positions,
   writes `output_dir/quant_info.json` exactly as calibration would, writes the trained weights
   into a copy of the float model (saved as `output_dir/deployable.pth`, as the reference
   does), and returns the test-mode quantizer's `quant_model` for it, which computes
   bit-for-bit what the trained model computes.
4. `deployable_model(src_dir, used_for_xmodel=False)` rebuilds that deployable model from
   `src_dir` (e.g. in a later process; on the CPU with `used_for_xmodel=True`).
5. `export_xmodel(output_dir)` exports through that test-mode quantizer; the deployable model
   must be on the CPU (the guide's XMODEL_DEVICE error otherwise) and have run a batch of 1.

Every write is an export unit (`nndct_shared.export_commit`, issue 13): `to_deployable` stages
quant_info.json and deployable.pth, builds the test-mode quantizer from what it staged (its
`<Model>.py` staged beside them) and commits the three at once; `export_xmodel` into the
directory the deployable model came from commits the xmodel and dumps with the quant_info.json
and deployable.pth it was built from; `deployable_model` reads both files from one pinned
version. A kill at any instruction leaves a reader the old complete deployment or the new one.

`trainable_model(calib_dir)` starts the activation thresholds from a post-training
calibration's quant_info.json instead of the first batch. Cross-layer equalization and bias
correction (on by default in post-training quantization) are off in QAT, as in the reference:
training fits weights and biases itself, and the deployable model must get exactly the trained
weights.

Training differs from the reference in one documented way: BatchNorm is folded into the conv
with its float running statistics and stays frozen (the folded weights are trained), and
Dropout is dropped, as in the deployed model.
"""
from __future__ import annotations

import copy
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.cnn_export import export_file_name
from nndct_shared.collective import write_dir
from nndct_shared.config import default_config
from nndct_shared.deploy_check import DEPLOY_CHECK_DIR, dump_file_stem
from nndct_shared.export_commit import snapshot
from nndct_shared.messages import error, note
from nndct_shared.output_dir import checked_output_dir, staged_export
from nndct_shared.quant_info import QuantInfo
from nndct_shared.quant_info_store import FLOAT_QUANT_INFO_FILE, QUANT_INFO_FILE, QuantInfoStore
from nndct_shared.quant_info_v3 import QuantRecord, to_json_text_v3
from nndct_shared.quant_mode import RunMode

from ..distributed import current_collective
from ..parse.tracer import trace_model
from ..optim.bias_correction import BIAS_CORR_FILE
from ..qproc.cnn import TorchQuantizer
from ..qproc.codegen import class_name_for, generate_source, load_source, state_dict_of
from .checks import check_arithmetic, check_reuse, check_stubs, quantized_nodes
from .deploy import load_deployable, write_back
from .runtime import QatModel, QatQuantizers
from ..utils.device import resolve_device

__all__ = ["DEPLOYABLE_MODEL_FILE", "QatProcessor"]

#: The deployable model's state dict (the float model's keys), as the reference names it.
DEPLOYABLE_MODEL_FILE = "deployable.pth"


def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    if isinstance(inputs, (list, tuple)):
        return tuple(inputs)
    return (inputs,)


def _qat_config(directory: Path, bitwidth: int) -> str:
    """The default config of `bitwidth` with cross-layer equalization and bias correction off,
    written to `directory` for the quantizers QAT builds (see the module docstring)."""
    data = default_config(bitwidth, "DPU" if bitwidth == 8 else "CPU").to_dict()
    data["include_cle"] = data["include_bias_corr"] = False
    path = directory / "qat_quant_config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


class QatProcessor:
    """Quantization-aware training of `model` (a float model with QuantStub/DeQuantStub).

    `inputs`: example inputs (a tensor or a tuple) used to trace the model. `bitwidth`: bits of
    weights and activations (8 for the DPU). `mix_bit` is not implemented.
    """

    def __init__(self, model: nn.Module, inputs: Any, bitwidth: int = 8, mix_bit: bool = False,
                 device: Any = torch.device("cuda")) -> None:
        if not isinstance(model, nn.Module):
            raise error("MODULE_TYPE", got=type(model).__name__)
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            raise error("DATA_PARALLEL_NOT_ALLOWED", argument="model")
        if isinstance(bitwidth, bool) or not isinstance(bitwidth, int) or not 2 <= bitwidth <= 16:
            raise error("ILLEGAL_BITWIDTH", value=bitwidth, path="bitwidth", low=2, high=16)
        if mix_bit:
            raise NotImplementedError("QatProcessor(mix_bit=True) (mixed-precision QAT) is not implemented.")
        self.bitwidth = bitwidth
        self.device = resolve_device(device)
        self._inputs = tuple(a.to(self.device) if isinstance(a, torch.Tensor) else a for a in _as_tuple(inputs))
        self._float_model = copy.deepcopy(model).to(self.device).eval()
        self._gm = trace_model(self._float_model, self._inputs)
        check_stubs(self._float_model, self._gm)
        self._quantized = quantized_nodes(self._gm)
        check_arithmetic(self._gm, self._quantized)
        self._workdir = tempfile.TemporaryDirectory(prefix="nndct_qat_")
        self._config_file = _qat_config(Path(self._workdir.name), bitwidth)
        self._capture = TorchQuantizer(RunMode.CALIB, self._float_model, self._inputs, self._workdir.name,
                                       bitwidth, self.device, self._config_file)
        self._trainable: QatModel | None = None
        self._deploy_quantizer: TorchQuantizer | None = None
        self._deployed: tuple[Path, dict[str, bytes]] = (Path(), {})
        """(directory, {name: bytes}) of the files the deployable model was built from."""

    @property
    def graph(self):
        """The captured float graph the trainable model runs (node and tensor names)."""
        return self._capture.graph

    # --- training ---------------------------------------------------------------------------

    def trainable_model(self, calib_dir: str = "", allow_reused_module: bool = False) -> QatModel:
        """The model to train: the converted model with learnable quantizers.

        `calib_dir`: a directory holding the quant_info.json of a post-training calibration of
        this model; its activation and input fix positions start those thresholds (the others
        are initialised by the first forward pass, from the tensors they see).

        A quantized module called more than once raises REUSED_MODULE, unless
        `allow_reused_module=True`: then its calls share weights (and a warning is logged).
        """
        check_reuse(self._gm, self._quantized, allow_reused_module)
        graph = self._capture.graph
        # built from the source in memory: the class name reduced to [0-9A-Za-z_] and the node
        # names escaped in comments (`codegen`), so no part of a user's name is ever executed
        name = class_name_for(graph.name)
        source, order = generate_source(graph, name, self._capture.captured.traced_names)
        net = load_source(source, name, f"{name}.py (trainable)")()
        net.load_state_dict(state_dict_of(order), strict=True)
        shared: dict[str, nn.Parameter] = {}
        for i, node in enumerate(order):
            module = getattr(net, f"module_{i}")
            module.node_name = node.name
            module.param_names = {role: t.name for role, t in node.params.items()}
            for role, tensor in node.params.items():
                param = getattr(module, role)
                if role == "other":  # a constant of the user's code, not a weight: not trained
                    param.requires_grad_(False)
                    continue
                if tensor.name in shared:  # a reused module: its calls share one weight
                    setattr(module, role, shared[tensor.name])
                    continue
                param.requires_grad_(True)
                shared[tensor.name] = param
        self._order = order
        quantizers = QatQuantizers(self._capture.settings)
        if calib_dir:
            quantizers.start_from(self._calibrated_fix_positions(Path(calib_dir)))
        model = QatModel(net, quantizers).to(self.device)
        self._trainable = model
        return model

    def _calibrated_fix_positions(self, calib_dir: Path) -> dict[str, int]:
        settings, plan = self._capture.settings, self._capture.plan
        info = QuantInfoStore(calib_dir).read_record([n for n in plan.params if n in settings],
                                                     [n for n in plan.outputs if n in settings]).info
        # activations and inputs only: a calibration with cross-layer equalization / bias
        # correction (the post-training defaults) fixed other weights than the ones trained
        # here, so the weights' quantizers start from the weights themselves
        return {name: fp for name, (_, fp) in info.output.items() if fp is not None and name in settings}

    # --- deployment -------------------------------------------------------------------------

    def _quant_info(self, fix_pos: dict[str, int]) -> QuantInfo:
        settings, plan = self._capture.settings, self._capture.plan
        param = {n: (settings[n].bit_width, fix_pos[n]) for n in plan.params if n in settings}
        output = {n: (settings[n].bit_width, fix_pos[n]) for n in plan.outputs if n in settings}
        return QuantInfo(param=param, output=output)

    def to_deployable(self, trained_model: nn.Module, output_dir: str = "qat_result") -> nn.Module:
        """The deployable model of `trained_model` (the test-mode quantizer's quant_model).

        Writes `output_dir/quant_info.json` (the learned fix positions), `deployable.pth` and the
        converted model `<Model>.py` as one export unit (`_deployment_unit`); the returned model
        computes exactly what `trained_model` computes.
        """
        if self._trainable is None:
            raise error("QAT_PROCESS_ERROR", action="to_deployable()")
        if isinstance(trained_model, nn.parallel.DistributedDataParallel):
            trained_model = trained_model.module  # trained under DDP: every rank holds the same
        if not isinstance(trained_model, QatModel) or trained_model.quantizers.names != list(self._capture.settings):
            raise error("QAT_MODEL_MISMATCH", got=type(trained_model).__name__)
        missing = trained_model.quantizers.uninitialized()
        if missing:
            raise error("NO_FORWARD", action=f"to_deployable() (the quantizers of {len(missing)} tensor(s), "
                                             f"e.g. '{missing[0]}', were never reached by a forward pass)")
        # under torch.distributed rank 0 writes output_dir; the others build the same deployable
        # model in a private temporary directory
        out_dir = write_dir(current_collective(), output_dir)
        float_model = copy.deepcopy(self._float_model)
        write_back(float_model, self._order, trained_model.net, self.graph.name)
        record = QuantRecord(self._quant_info(trained_model.fix_positions()),
                             graph_md5=self._capture.session.graph_md5)
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in float_model.state_dict().items()}, buffer)
        files = {QUANT_INFO_FILE: to_json_text_v3(record).encode("utf-8"), DEPLOYABLE_MODEL_FILE: buffer.getvalue()}
        with staged_export(out_dir, owns=_deployment_unit(self.graph.name)) as unit:
            for name, data in files.items():
                unit.write_bytes(out_dir / name, data)
            # test mode reads the quant_info.json staged here and stages its <Model>.py beside it
            quantizer = TorchQuantizer(RunMode.TEST, float_model, self._inputs, str(out_dir), self.bitwidth,
                                       self.device, self._config_file, unit=unit)
        note(f"=>Exported quantization steps to '{out_dir / QUANT_INFO_FILE}'")
        note(f"=>Deployable model saved to '{out_dir / DEPLOYABLE_MODEL_FILE}'")
        self._deploy_quantizer, self._deployed = quantizer, (out_dir, files)
        return quantizer.quant_model

    def deployable_model(self, src_dir: str = "qat_result", used_for_xmodel: bool = False) -> nn.Module:
        """The deployable model saved by `to_deployable(..., src_dir)` (quant_info.json and
        deployable.pth, both read from one version of `src_dir`, so that a concurrent
        `to_deployable` cannot pair one run's weights with another's fix positions), e.g. in a
        later process; on the CPU with `used_for_xmodel=True` (then forward it once with a batch
        of 1 and call `export_xmodel`)."""
        src = checked_output_dir(src_dir)
        pinned = snapshot(src)
        weights = pinned.path(DEPLOYABLE_MODEL_FILE)
        if not weights.is_file():
            raise error("QAT_NO_DEPLOYABLE",
                        action=f"deployable_model('{src_dir}') ('{src / DEPLOYABLE_MODEL_FILE}' is missing)")
        files = {DEPLOYABLE_MODEL_FILE: weights.read_bytes()}
        info = pinned.path(QUANT_INFO_FILE)
        if info.is_file():  # missing: test mode below says NO_CALIB_RESULT
            files[QUANT_INFO_FILE] = info.read_bytes()
        device = torch.device("cpu") if used_for_xmodel else self.device
        float_model = copy.deepcopy(self._float_model).to(device)
        load_deployable(float_model, torch.load(io.BytesIO(files[DEPLOYABLE_MODEL_FILE]), map_location=device,
                                                weights_only=True))
        inputs = tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in self._inputs)
        self._deploy_quantizer = TorchQuantizer(RunMode.TEST, float_model, inputs, str(src), self.bitwidth, device,
                                                self._config_file, pinned=pinned)
        self._deployed = (src, files)
        if used_for_xmodel:
            note("=>Forward the deployable model with data of batch_size=1 in CPU mode to export the xmodel.")
        return self._deploy_quantizer.quant_model

    def export_xmodel(self, output_dir: str = "qat_result", deploy_check: bool = False) -> Path:
        """`<output_dir>/<Model>_int.xmodel` of the deployable model (on the CPU: forward it
        once with batch size 1 first). Into the directory the deployable model came from, the
        xmodel (and its dumps) commit together with the quant_info.json and deployable.pth it
        was made from: a reader never sees an xmodel beside another run's fix positions."""
        if self._deploy_quantizer is None:
            raise error("QAT_NO_DEPLOYABLE", action="export_xmodel()")
        model = self._deploy_quantizer.quant_model
        tensor = next(iter(model.parameters()), None)
        if tensor is None and self._deploy_quantizer.runtime.last_inputs:
            tensor = self._deploy_quantizer.runtime.last_inputs[0]
        if tensor is not None and tensor.device.type != "cpu":
            raise error("XMODEL_DEVICE", device=str(tensor.device))
        source_dir, files = self._deployed
        same_dir = os.path.realpath(checked_output_dir(output_dir)) == os.path.realpath(source_dir)
        return self._deploy_quantizer.export_xmodel_with(output_dir, deploy_check, files if same_dir else None)


def _deployment_unit(graph_name: str) -> list[str]:
    """What a deployment of graph `graph_name` owns in its output_dir besides what it writes:
    the other files of a calibration result (an older post-training calibration's
    quant_info_float.json / bias_corr.pth) and the xmodel and dumps of an earlier deployment,
    which would not belong to the new fix positions."""
    return [FLOAT_QUANT_INFO_FILE, BIAS_CORR_FILE, export_file_name(graph_name, ".xmodel"),
            f"{DEPLOY_CHECK_DIR}/{dump_file_stem(graph_name)}"]
