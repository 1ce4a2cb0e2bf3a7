"""Option combinations that cannot work together, on any target (guide, "Configuration
Restrictions": "there are some conflicts when using different configurations").

The guide names two conflicts: the 'modal' statistic with the float-scale methods (maxmin,
percentile, mse, entropy), and asymmetric quantization with mse or entropy. The others below
are the ones the reference tool rejects (its config checker), plus two that follow from the
definitions (per-channel only for weights; narrow_range only for signed grids).

Decision where the guide contradicts itself: read literally, "maxmin cannot use modal" would
also forbid the DPU setting it prescribes (method maxmin, calib_statistic_method modal). As in
the reference tool, the modal conflict applies to float scales only: with power-of-two scales,
modal (the most frequent fix position) is the one supported statistic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .enums import CalibMethod, CalibStatistic, ScaleType, TensorKind
from .resolve import Scope

#: Methods that produce float scales (everything but diffs).
FLOAT_SCALE_METHODS = frozenset(
    {CalibMethod.MAXMIN, CalibMethod.PERCENTILE, CalibMethod.MSE, CalibMethod.ENTROPY}
)
#: Methods usable with power-of-two scales.
POWER_OF_TWO_METHODS = frozenset({CalibMethod.DIFFS, CalibMethod.MAXMIN})
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
    if pot and p.method not in POWER_OF_TWO_METHODS:
        yield Violation(
            "method",
            f"method '{method}' computes float scales, but scale_type is 'poweroftwo' "
            f"('{src['scale_type']}')",
            "Use method 'diffs' or 'maxmin' with power-of-two scales, or set scale_type to "
            "'float'.",
        )
    if pot and not p.symmetry:
        yield Violation(
            "symmetry",
            f"asymmetric quantization needs a zero point, which power-of-two scales "
            f"('{src['scale_type']}') do not have",
            "Set symmetry to true, or scale_type to 'float'.",
        )
    if pot and not p.signed:
        yield Violation(
            "signed",
            f"power-of-two scales ('{src['scale_type']}') support signed quantization only",
            "Set signed to true, or scale_type to 'float'.",
        )
    if not p.symmetry and p.method in (CalibMethod.MSE, CalibMethod.ENTROPY):
        yield Violation(
            "method",
            f"method '{method}' is not supported with asymmetric quantization "
            f"('{src['symmetry']}' = false)",
            "Set symmetry to true, or use method 'maxmin' or 'percentile'.",
        )
    if p.per_channel and not pot and p.method is not CalibMethod.MAXMIN:
        yield Violation(
            "method",
            f"per-channel float quantization ('{src['per_channel']}' = true) supports method "
            "'maxmin' only",
            "Use method 'maxmin' for per-channel float scales, or scale_type 'poweroftwo'.",
        )
    if kind in PER_BATCH_KINDS:
        stat = p.calib_statistic_method
        if not pot and stat is CalibStatistic.MODAL:
            yield Violation(
                "calib_statistic_method",
                f"the 'modal' statistic is not supported with method '{method}' and float scales "
                "(modal picks the most frequent power-of-two fix position)",
                "Use calib_statistic_method 'max', 'mean' or 'median' with float scales.",
            )
        if pot and stat is not CalibStatistic.MODAL:
            yield Violation(
                "calib_statistic_method",
                f"power-of-two scales ('{src['scale_type']}') are combined across batches by "
                "'modal' only",
                "Set calib_statistic_method to 'modal', or scale_type to 'float'.",
            )
    if p.narrow_range and not p.signed:
        yield Violation(
            "narrow_range",
            f"narrow_range only applies to signed quantization ('{src['signed']}' = false)",
            "Set narrow_range to false, or signed to true.",
        )
