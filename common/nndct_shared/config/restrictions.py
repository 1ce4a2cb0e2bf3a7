"""What each target device accepts (guide, "Configuration Restrictions").

DPU, as the guide states it: method diffs or maxmin; round_mode std_round for weights, bias and
input, half_up for activation; symmetric; per-tensor; signed; scale_type poweroftwo;
calib_statistic_method modal. In addition, 8-bit widths: the CNN DPUs compute in int8
(deploying other widths fails only later, in the compiler or on the board).

Decision where the guide contradicts itself: its "Default Configurations" listing, which it
says "is adapted to DPU device", has one round_mode, std_round, for every tensor, while its DPU
restrictions require half_up for activations. A DPU config whose activations say std_round is
therefore read as the listing means it: activations are rounded half_up on the DPU (with a note
saying so, `dpu_rounding`), every other tensor std_round. Other activation round modes on a DPU
are an error.

Decision where the guide contradicts itself: its DPU list says "narrow_range: true", while its
own default configuration (documented as adapted to DPU) has narrow_range false and the
reference tool rejects narrow_range true on DPU. narrow_range is therefore not restricted.

DPU_RNN (this project's name for the DPU-for-RNN IP that the RNN quantizer targets): int16
activations ("lstm IP only support 16 bit activation" in the reference), weights and bias of at
most 16 bits, floor rounding for activations and input (kernel method 4), std_round for weights
and bias, and otherwise the same power-of-two rules as DPU.

CPU and GPU have no restrictions beyond the general conflicts.
"""

from __future__ import annotations

from collections.abc import Iterator

from .conflicts import PER_BATCH_KINDS, Violation
from .enums import CalibMethod, CalibStatistic, RoundMode, ScaleType, TargetDevice, TensorKind
from .resolve import Scope

#: The calibration methods the guide allows on a DPU.
DPU_METHODS = frozenset({CalibMethod.DIFFS, CalibMethod.MAXMIN})
#: Bit width of every tensor on a CNN DPU.
DPU_BIT_WIDTH = 8
#: Bit width of activations and inputs on the RNN DPU; weights and bias may use up to this.
DPU_RNN_BIT_WIDTH = 16

_OTHER_TARGETS = "or set target_device to 'CPU' or 'GPU' if the model is not deployed to a DPU."


def target_violations(target: TargetDevice, scope: Scope,
                      listing_rounding: bool = False) -> Iterator[Violation]:
    """The restrictions of `target` that `scope` breaks.

    `listing_rounding`: accept round_mode std_round for DPU activations, as the guide's "Default
    Configurations" listing writes it (one round_mode for every tensor); the config then rounds
    those activations half_up, which is what the DPU does (`resolve.for_tensor`,
    `dpu_rounding`). Only a config's check of its own target_device passes True: a config written
    for CPU/GPU and deployed with `target=` must say half_up itself.
    """
    if target is TargetDevice.DPU:
        yield from _dpu(scope, listing_rounding)
    elif target is TargetDevice.DPU_RNN:
        yield from _dpu_rnn(scope)


def _power_of_two_rules(scope: Scope) -> Iterator[Violation]:
    p, kind = scope.params, scope.kind
    if p.method not in DPU_METHODS:
        yield Violation("method", "the method must be diffs or maxmin",
                        f"Set method to 'diffs' (or 'maxmin'), {_OTHER_TARGETS}")
    if not p.symmetry:
        yield Violation("symmetry", "quantization must be symmetric",
                        f"Set symmetry to true, {_OTHER_TARGETS}")
    if p.per_channel:
        yield Violation("per_channel", "quantization must be per tensor",
                        f"Set per_channel to false, {_OTHER_TARGETS}")
    if not p.signed:
        yield Violation("signed", "quantization must be signed",
                        f"Set signed to true, {_OTHER_TARGETS}")
    if p.scale_type is not ScaleType.POWER_OF_TWO:
        yield Violation("scale_type", "scales must be powers of two",
                        f"Set scale_type to 'poweroftwo', {_OTHER_TARGETS}")
    if kind in PER_BATCH_KINDS and p.calib_statistic_method is not CalibStatistic.MODAL:
        yield Violation("calib_statistic_method", "the calibration statistic must be modal",
                        f"Set calib_statistic_method to 'modal', {_OTHER_TARGETS}")


def _round_rule(scope: Scope, wanted: RoundMode, why: str) -> Iterator[Violation]:
    if scope.params.round_mode is not wanted:
        yield Violation(
            "round_mode",
            f"{scope.kind.value} tensors must use round_mode '{wanted.value}' ({why})",
            f"Set round_mode to '{wanted.value}' for {scope.kind.value} tensors (e.g. in "
            f"tensor_quantize_config.{scope.kind.value}), {_OTHER_TARGETS}",
        )


def _dpu(scope: Scope, listing_rounding: bool = False) -> Iterator[Violation]:
    if scope.params.bit_width != DPU_BIT_WIDTH:
        yield Violation(
            "bit_width",
            "the DPU computes in int8, so bit_width must be 8",
            "Use bit_width 8; to simulate other widths set target_device to 'CPU' or 'GPU' "
            "(16-bit LSTMs: use lstm_config(), target_device 'DPU_RNN').",
        )
    yield from _power_of_two_rules(scope)
    if scope.kind is TensorKind.ACTIVATION:
        if listing_rounding and scope.params.round_mode is RoundMode.STD_ROUND:
            return
        yield from _round_rule(scope, RoundMode.HALF_UP, "the DPU rounds activations half up")
    else:
        yield from _round_rule(scope, RoundMode.STD_ROUND,
                               "the DPU expects parameters and inputs rounded half away from zero")


def _dpu_rnn(scope: Scope) -> Iterator[Violation]:
    p, kind = scope.params, scope.kind
    if kind in PER_BATCH_KINDS and p.bit_width != DPU_RNN_BIT_WIDTH:
        yield Violation(
            "bit_width",
            "the RNN DPU computes activations and inputs in int16, so bit_width must be 16",
            "Set bit_width to 16 for input and activation tensors, e.g. with lstm_config().",
        )
    if kind not in PER_BATCH_KINDS and p.bit_width > DPU_RNN_BIT_WIDTH:
        yield Violation(
            "bit_width",
            "the RNN DPU holds weights and bias in at most 16 bits",
            "Use a bit_width of at most 16 for weights and bias.",
        )
    yield from _power_of_two_rules(scope)
    if kind in PER_BATCH_KINDS:
        yield from _round_rule(scope, RoundMode.FLOOR,
                               "the RNN DPU truncates activations toward -inf")
    else:
        yield from _round_rule(scope, RoundMode.STD_ROUND,
                               "the RNN quantizer rounds parameters half away from zero")
