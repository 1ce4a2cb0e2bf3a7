"""Hardware-aware quantization of the CNN flow: `torch_quantizer(..., target="DPUCZDX8G_ISA1_B4096")`.

The guide: "Inspector provides device assignments to operators ... vai_q_pytorch can use the
power of inspector to perform hardware-aware quantization." The framework-neutral part
(`nndct_shared.inspector.adjust`) states, as data, what must change for a target; this module
applies it to what the CNN session (`nndct_shared.cnn.session`) built, after capture and before
the front end's quantized model is generated (so nothing has been written yet when the target is
rejected):

1. the target is looked up: an unknown name or fingerprint is the catalogued UNKNOWN_TARGET
   error; a config file meant for another target_device (CPU/GPU) must still satisfy the DPU
   restrictions other than the bit width (QUANT_CONFIG_TARGET otherwise);
2. the captured graph: every LeakyReLU that the DPU runs once its slope is the DPU's gets
   negative_slope 0.1015625 (26/256), with the LEAKYRELU warning; `<Model>.py`, the quantized
   model and the exports all read the slope from the graph;
3. the fix plan: only the quantized nodes the target runs on the DPU are quantized (params and
   outputs, as `plan_fixes` places them); a node on the CPU runs in float, except that its
   output is quantized as an input tensor (kind "input") when a DPU node reads it, exactly as a
   QuantStub boundary would be. The model's own QuantStub regions still bound what is
   quantized;
4. the per-tensor settings: resolved from the config for the new plan, then every bit width set
   to the target's (8: the DPU computes in int8 only), whatever `bitwidth` or the config says.

Everything is a deterministic function of the model, the config and the target, so calib and
test mode derive the same plan and quant_info.json lines up between them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Collection, Mapping

from nndct_shared.cnn import FixPlan, plan_fixes
from nndct_shared.config import QuantConfig, TargetDevice
from nndct_shared.config.resolve import scopes
from nndct_shared.config.restrictions import target_violations
from nndct_shared.config.validate import show
from nndct_shared.inspector import (CPU, DPU, DpuTarget, InspectResult, get_target,
                                    hardware_aware_adjustments, hardware_aware_partition)
from nndct_shared.messages import error, note, warn

from .capture import CapturedModel
from .settings import TensorSettings, resolve_settings

__all__ = ["HardwareAwarePlan", "apply_target", "plan_for_target"]

#: CPU nodes named one by one in the summary note; the rest are counted.
_NOTE_LIMIT = 10


class HardwareAwarePlan:
    """What hardware-aware quantization decided for one model (kept for inspection/tests)."""

    def __init__(self, target: DpuTarget, partition: InspectResult, dpu_nodes: set[str],
                 quant_inputs: set[str], slopes: dict[str, tuple[float, float]]) -> None:
        self.target = target
        self.partition = partition
        self.dpu_nodes = dpu_nodes
        self.quant_inputs = quant_inputs
        self.slopes = slopes            # LeakyReLU node -> (old slope, new slope)

    @property
    def cpu_nodes(self) -> list[str]:
        """Non-input nodes that run in float on the CPU, in topological order."""
        return [a.name for a in self.partition.assignments.values()
                if a.device == CPU and a.op_type != "input"]


def _check_config(config: QuantConfig, dpu: DpuTarget) -> None:
    """A config written for target_device CPU/GPU must still be one the DPU can run (bit widths
    aside: hardware-aware quantization sets them to 8)."""
    if config.target_device is TargetDevice.DPU:
        return                      # already checked against the DPU restrictions on load
    for scope in scopes(config):
        for v in target_violations(TargetDevice.DPU, scope):
            if v.param == "bit_width":
                continue
            raise error("QUANT_CONFIG_TARGET", path=scope.sources[v.param],
                        value=show(getattr(scope.params, v.param)), target=f"DPU ({dpu.name})",
                        kind=scope.kind.value, requirement=v.problem,
                        hint=v.hint + f" (target={dpu.name!r} deploys to a DPU)")


def plan_for_target(target: str | int | DpuTarget, captured: CapturedModel,
                    config: QuantConfig) -> HardwareAwarePlan:
    """Steps 1-2 of the module docstring (changes the captured graph's LeakyReLU slopes)."""
    dpu = get_target(target)
    _check_config(config, dpu)
    graph = captured.graph
    partition = hardware_aware_partition(graph, dpu, captured.quantized)
    slopes: dict[str, tuple[float, float]] = {}
    for adjustment in hardware_aware_adjustments(graph, dpu, captured.quantized):
        if adjustment.kind == "leaky_relu_alpha":
            graph.node(adjustment.node).attrs["alpha"] = float(adjustment.new)
            slopes[adjustment.node] = (float(adjustment.old), float(adjustment.new))
            warn("LEAKYRELU", node=adjustment.node, slope=adjustment.old)
    dpu_nodes = {name for name in captured.quantized if partition.device_of(name) == DPU}
    quant_inputs = {node.name for node in graph if node.name not in dpu_nodes
                    and any(s.name in dpu_nodes for s in graph.successors(node.name))}
    return HardwareAwarePlan(dpu, partition, dpu_nodes, quant_inputs, slopes)


def _summary(plan: HardwareAwarePlan, changed_widths: int, widths: set[int]) -> str:
    target = plan.target
    text = (f"=>Hardware-aware quantization for {target.name}: {len(plan.dpu_nodes)} node(s) "
            f"quantized for the DPU")
    cpu = plan.cpu_nodes
    if cpu:
        shown = [f"{name} ({plan.partition.assignments[name].reason})" for name in cpu[:_NOTE_LIMIT]]
        more = f"; and {len(cpu) - _NOTE_LIMIT} more" if len(cpu) > _NOTE_LIMIT else ""
        text += f", {len(cpu)} kept in float on the CPU: " + "; ".join(shown) + more
    if changed_widths:
        text += (f". Bit width {'/'.join(str(w) for w in sorted(widths))} of {changed_widths} "
                 f"tensor(s) set to {target.bit_width} (the DPU computes in int8 only)")
    return text + "."


def apply_target(target: str | int | DpuTarget | None, captured: CapturedModel, config: QuantConfig,
                 plan: FixPlan, settings: Mapping[str, TensorSettings],
                 activation_inputs: Collection[str] = ()) -> tuple[FixPlan, dict[str, TensorSettings]]:
    """The fix plan and settings of a CNN session for `target` (unchanged for None).

    `activation_inputs`: outputs of layers the config keeps in float, quantized as activations
    where a DPU node reads them (`plan_fixes`, `keep_float`). Changes `captured.graph` in place
    (LeakyReLU slopes); see the module docstring."""
    if target is None:
        return plan, dict(settings)
    hw = plan_for_target(target, captured, config)
    graph = captured.graph
    new_plan = plan_fixes(graph, hw.dpu_nodes, hw.quant_inputs, activation_inputs)
    resolved = resolve_settings(new_plan, config, captured.layer_types,
                                {n.name: n.op_type for n in graph}, captured.traced_names)
    bits = hw.target.bit_width
    widths = {s.bit_width for s in resolved.values() if s.bit_width != bits}
    changed = sum(1 for s in resolved.values() if s.bit_width != bits)
    result = {name: s if s.bit_width == bits else replace(s, bit_width=bits)
              for name, s in resolved.items()}
    note(_summary(hw, changed, widths))
    return new_plan, result
