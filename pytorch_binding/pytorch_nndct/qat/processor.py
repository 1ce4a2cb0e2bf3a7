"""`QatProcessor`: quantization-aware training with the guide's API.

Flow (guide, "vai_q_pytorch QAT"):
1. `QatProcessor(model, inputs, bitwidth=8)` checks the QAT requirements on the model's trace
   (QuantStub present, `+`/`-` as functional modules) and captures it with the CNN flow.
2. `trainable_model()` returns a `QatModel`: the converted model with a learnable TQT quantizer
   (log2 threshold, straight-through gradients) on every tensor the fix plan quantizes.
3. `to_deployable(trained, output_dir)` turns the learned thresholds into integer fix positions,
   writes `output_dir/quant_info.json` exactly as calibration would, writes the trained weights
   into a copy of the float model, and returns the test-mode quantizer's `quant_model` for it,
   which computes bit-for-bit what the trained model computes.
4. `export_xmodel(output_dir)` exports through that test-mode quantizer.

Training differs from the reference in one documented way: BatchNorm is folded into the conv
with its float running statistics and stays frozen (the folded weights are trained), and
Dropout is dropped, as in the deployed model.
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nndct_shared.messages import error, note, warn
from nndct_shared.quant_info import QuantInfo, write_quant_info

from ..parse.tracer import trace_model
from ..qproc.cnn import QUANT_INFO_FILE, TorchQuantizer
from ..qproc.codegen import generate_source, load_generated, state_dict_of
from .checks import check_arithmetic, check_reuse, check_stubs, quantized_nodes
from .deploy import write_back
from .runtime import QatModel, QatQuantizers

__all__ = ["QatProcessor"]


def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    if isinstance(inputs, (list, tuple)):
        return tuple(inputs)
    return (inputs,)


def _resolve_device(device: Any) -> torch.device:
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        warn("CUDA_UNAVAILABLE", requested=str(device))
        return torch.device("cpu")
    return device


class QatProcessor:
    """Quantization-aware training of `model` (a float model with QuantStub/DeQuantStub).

    `inputs`: example inputs (a tensor or a tuple) used to trace the model. `bitwidth`: bits of
    weights and activations (8 for the DPU). `mix_bit` is not implemented.
    """

    def __init__(self, model: nn.Module, inputs: Any, bitwidth: int = 8, mix_bit: bool = False,
                 device: Any = torch.device("cuda")) -> None:
        if not isinstance(model, nn.Module):
            raise error("MODULE_TYPE", got=type(model).__name__)
        if isinstance(bitwidth, bool) or not isinstance(bitwidth, int) or not 2 <= bitwidth <= 16:
            raise error("ILLEGAL_BITWIDTH", value=bitwidth, path="bitwidth", low=2, high=16)
        if mix_bit:
            raise NotImplementedError("QatProcessor(mix_bit=True) (mixed-precision QAT) is not implemented.")
        self.bitwidth = bitwidth
        self.device = _resolve_device(device)
        self._inputs = tuple(a.to(self.device) if isinstance(a, torch.Tensor) else a for a in _as_tuple(inputs))
        self._float_model = copy.deepcopy(model).to(self.device).eval()
        self._gm = trace_model(self._float_model, self._inputs)
        check_stubs(self._float_model, self._gm)
        self._quantized = quantized_nodes(self._gm)
        check_arithmetic(self._gm, self._quantized)
        self._workdir = tempfile.TemporaryDirectory(prefix="nndct_qat_")
        self._capture = TorchQuantizer("calib", self._float_model, self._inputs, self._workdir.name,
                                       bitwidth, self.device)
        self._trainable: QatModel | None = None
        self._deploy_quantizer: TorchQuantizer | None = None

    @property
    def graph(self):
        """The captured float graph the trainable model runs (node and tensor names)."""
        return self._capture.graph

    # --- training ---------------------------------------------------------------------------

    def trainable_model(self, allow_reused_module: bool = False) -> QatModel:
        """The model to train: the converted model with learnable quantizers.

        A quantized module called more than once raises REUSED_MODULE, unless
        `allow_reused_module=True`: then its calls share weights (and a warning is logged).
        """
        check_reuse(self._gm, self._quantized, allow_reused_module)
        graph = self._capture.graph
        _, order = generate_source(graph, graph.name)
        net = load_generated(Path(self._workdir.name) / f"{graph.name}.py", graph.name)()
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
        model = QatModel(net, QatQuantizers(self._capture.settings)).to(self.device)
        self._trainable = model
        return model

    # --- deployment -------------------------------------------------------------------------

    def _quant_info(self, fix_pos: dict[str, int]) -> QuantInfo:
        settings, plan = self._capture.settings, self._capture.plan
        param = {n: (settings[n].bit_width, fix_pos[n]) for n in plan.params if n in settings}
        output = {n: (settings[n].bit_width, fix_pos[n]) for n in plan.outputs if n in settings}
        return QuantInfo(param=param, output=output)

    def to_deployable(self, trained_model: nn.Module, output_dir: str = "qat_result") -> nn.Module:
        """The deployable model of `trained_model` (the test-mode quantizer's quant_model).

        Writes `output_dir/quant_info.json` (the learned fix positions) and the converted model
        `<Model>.py` there; the returned model computes exactly what `trained_model` computes.
        """
        if self._trainable is None:
            raise error("QAT_PROCESS_ERROR", action="to_deployable()")
        if not isinstance(trained_model, QatModel) or trained_model.quantizers.names != list(self._capture.settings):
            raise error("QAT_MODEL_MISMATCH", got=type(trained_model).__name__)
        missing = trained_model.quantizers.uninitialized()
        if missing:
            raise error("NO_FORWARD", action=f"to_deployable() (the quantizers of {len(missing)} tensor(s), "
                                             f"e.g. '{missing[0]}', were never reached by a forward pass)")
        out_dir = Path(output_dir)
        path = write_quant_info(self._quant_info(trained_model.fix_positions()), out_dir / QUANT_INFO_FILE)
        note(f"=>Exported quantization steps to '{path}'")
        float_model = copy.deepcopy(self._float_model)
        write_back(float_model, self._order, trained_model.net, self.graph.name)
        from ..apis import torch_quantizer

        self._deploy_quantizer = torch_quantizer("test", float_model, self._inputs, output_dir=str(out_dir),
                                                 bitwidth=self.bitwidth, device=self.device)
        return self._deploy_quantizer.quant_model

    def export_xmodel(self, output_dir: str = "qat_result", deploy_check: bool = False) -> Path:
        """`<output_dir>/<Model>_int.xmodel` of the deployable model (forward it once with batch
        size 1 first)."""
        if self._deploy_quantizer is None:
            raise error("QAT_NO_DEPLOYABLE", action="export_xmodel()")
        return self._deploy_quantizer.export_xmodel(output_dir, deploy_check)
