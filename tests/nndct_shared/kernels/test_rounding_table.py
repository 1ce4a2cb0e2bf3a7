"""One rounding-method table (`nndct_shared.kernels.methods`): the config's round modes, the
xmodel fix op's names and the fake quantization's codes all resolve there, to the same rule."""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared import kernels
from nndct_shared.config import RoundMode
from nndct_shared.kernels import methods

TIES = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], dtype=np.float32)


@pytest.mark.parametrize("mode", list(RoundMode))
def test_every_config_round_mode_is_a_fake_quantization_method(mode):
    code = methods.method_code(mode.value)
    assert methods.CODE_NAMES[code] == methods.CODE_NAMES[methods.resolve_method(mode.value)]
    by_name = kernels.fix_neuron(TIES, 8, 0, mode.value)
    np.testing.assert_array_equal(by_name, kernels.fix_neuron(TIES, 8, 0, methods.CODE_NAMES[code]))


@pytest.mark.parametrize(("xir", "rule"), [("DPU_ROUND", "half_up"), ("STD_ROUND", "std_round"),
                                           ("PY3_ROUND", "half_even")])
def test_the_xmodel_round_modes_are_names_of_the_table(xir, rule):
    assert methods.resolve_method(xir) == methods.resolve_method(rule)
    np.testing.assert_array_equal(kernels.fix_neuron(TIES, 8, 0, xir), kernels.fix_neuron(TIES, 8, 0, rule))


def test_code_names_cover_every_code_and_old_rnn_is_not_a_fake_quantization_method():
    assert sorted(methods.CODE_NAMES) == sorted(set(methods.METHOD_NAMES.values()))
    assert all(methods.resolve_method(name) == code for code, name in methods.CODE_NAMES.items())
    with pytest.raises(ValueError, match="not a fake-quantization rounding method"):
        methods.method_code("old_rnn")
