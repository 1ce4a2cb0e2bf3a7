"""Option combinations that cannot work together, on any target (guide, "Configuration
Restrictions": "there are some conflicts when using different configurations").

The guide names two conflicts, and both are enforced:

- the 'modal' statistic with the methods maxmin, percentile, mse and entropy ("if calibration
  method is 'maxmin', 'percentile', 'mse' or 'entropy', the calibration statistic method 'modal'
  is not supported"): modal picks the most frequent per-batch value, which only means something
  for the few power-of-two fix positions a search returns;
- asymmetric quantization with mse or entropy ("If symmetry mode is asymmetry, the calibration
  method 'mse' and 'entropy' are not supported").

Decision where the guide contradicts itself: read literally, "maxmin cannot use modal" would
also forbid the DPU setting it prescribes (method maxmin, calib_statistic_method modal). As in
the reference tool, maxmin with power-of-two scales is the exception: its per-batch results are
fix positions, and modal is the DPU's statistic. The statistic matters only for input and
activation tensors (calibrated batch by batch); weights and bias ignore it.

The other rules below are not choices but follow from what the options mean:

- per_channel: one scale per output channel of a layer's weight, so weights only;
- diffs: searches power-of-two scales, so not with scale_type float;
- narrow_range: "symmetric integer range for signed quantization" (the guide's own words).

Power-of-two scales work with asymmetric and unsigned grids too: a power-of-two scale with a
zero point (or unsigned codes), recorded with the float-scale tensors (see
``nndct_shared.calibration.float_scale``); only DPU targets require symmetric signed grids.

Every other combination of the guide's options is supported by the CNN flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .enums import CalibMethod, CalibStatistic, ScaleType, TensorKind
from .resolve import Scope

#: Methods for which the guide rules out the 'modal' statistic (maxmin: float scales only).
NO_MODAL_METHODS = frozenset(
    {CalibMethod.MAXMIN, CalibMethod.PERCENTILE, CalibMethod.MSE, CalibMethod.ENTROPY}
)
#: Kinds calibrated batch by batch, for which calib_statistic_method matters.
PER_BATCH_KINDS = frozenset({TensorKind.INPUT, TensorKind.ACTIVATION})


@dataclass(frozen=True)
class Violation:
    """A broken rule: `param` is the offending parameter; `problem` says why; `hint` the fix."""

    param: str
    problem: str
    hint: str


def general_conflicts(scope: Scope) -> Iterator[Violation]:
    """The conflicts among the parameters of `scope`, most fundamental first."""
    p, kind, src = scope.params, scope.kind, scope.sources
    pot = p.scale_type is ScaleType.POWER_OF_TWO
    method = p.method.value

    if p.per_channel and kind is not TensorKind.WEIGHTS:
        yield Violation(
            "per_channel",
            "per-channel quantization is only supported for weights",
            f"Set '{src['per_channel']}' to false; to quantize weights per channel, set "
            "tensor_quantize_config.weights.per_channel to true instead.",
        )
    if not pot and p.method is CalibMethod.DIFFS:
        yield Violation(
            "method",
            f"method 'diffs' searches power-of-two fix positions, but scale_type is 'float' "
            f"('{src['scale_type']}')",
            "Set scale_type to 'poweroftwo', or use method maxmin, percentile, entropy or mse.",
        )
    if not p.symmetry and p.method in (CalibMethod.MSE, CalibMethod.ENTROPY):
        yield Violation(
            "method",
            f"method '{method}' is not supported with asymmetric quantization "
            f"('{src['symmetry']}' = false)",
            "Set symmetry to true, or use method 'maxmin' or 'percentile'.",
        )
    if kind in PER_BATCH_KINDS and p.calib_statistic_method is CalibStatistic.MODAL:
        if p.method in NO_MODAL_METHODS and not (pot and p.method is CalibMethod.MAXMIN):
            scales = "power-of-two" if pot else "float"
            yield Violation(
                "calib_statistic_method",
                f"the 'modal' statistic is not supported with method '{method}' and {scales} "
                "scales (the guide: modal only goes with diffs, and with maxmin on power-of-two "
                "scales)",
                "Use calib_statistic_method 'max', 'mean' or 'median'.",
            )
    if p.narrow_range and not p.signed:
        yield Violation(
            "narrow_range",
            f"narrow_range only applies to signed quantization ('{src['signed']}' = false)",
            "Set narrow_range to false, or signed to true.",
        )
