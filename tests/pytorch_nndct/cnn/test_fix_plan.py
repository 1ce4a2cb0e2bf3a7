"""Fix placement on hand-built graphs (nndct_shared.cnn.fix_plan)."""
from __future__ import annotations

import numpy as np

from nndct_shared.cnn import plan_fixes
from nndct_shared.graph import Graph, Tensor


def _graph() -> Graph:
    g = Graph("G")
    g.add("in", "input", [], shape=(1, 4))
    w = {"weight": Tensor("G::fc.weight", data=np.ones((4, 4), np.float32)),
         "bias": Tensor("G::fc.bias", data=np.zeros(4, np.float32))}
    g.add("fc", "linear", ["in"], params=w, shape=(1, 4))
    g.add("relu", "relu", ["fc"], shape=(1, 4))
    g.add("flat", "flatten", ["relu"], attrs={"start_dim": 1, "end_dim": 1}, shape=(1, 4))
    g.add("fc2", "linear", ["flat"], params={"weight": Tensor("G::fc2.weight", data=np.ones((2, 4), np.float32))},
          shape=(1, 2))
    return g


def test_fused_relu_and_shape_ops():
    g = _graph()
    plan = plan_fixes(g, {n.name for n in g})
    assert list(plan.params) == ["G::fc.weight", "G::fc.bias", "G::fc2.weight"]
    assert [(t.name, t.kind) for t in plan.outputs.values()] == [("in", "input"), ("relu", "activation"),
                                                               ("fc2", "activation")]
    assert plan.params["G::fc.bias"].kind == "bias"


def test_relu_outside_region_does_not_take_the_fix():
    g = _graph()
    plan = plan_fixes(g, {"in", "fc"})
    assert list(plan.outputs) == ["in", "fc"]
    assert list(plan.params) == ["G::fc.weight", "G::fc.bias"]


def test_float_producer_entering_a_region_is_an_input():
    g = _graph()
    plan = plan_fixes(g, {"fc2", "flat"}, quant_inputs={"relu"})
    assert [(t.name, t.kind) for t in plan.outputs.values()] == [("relu", "input"), ("fc2", "activation")]
