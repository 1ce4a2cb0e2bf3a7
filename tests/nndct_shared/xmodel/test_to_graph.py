"""xmodel -> neutral graph: fix ops folded into their producers, consts into params."""
from __future__ import annotations

import numpy as np

from nndct_shared.graph import Graph
from nndct_shared.xmodel import XGraph, read_xmodel, xgraph_to_graph


def test_golden_cell_becomes_the_24_node_graph(decoder_xmodel) -> None:
    xgraph = read_xmodel(decoder_xmodel)
    graph = xgraph_to_graph(xgraph)
    p = xgraph.name
    assert isinstance(graph, Graph) and graph.name == p
    assert len(graph) == 24
    assert sorted(n.op_type for n in graph) == sorted(
        ["data"] * 3 + ["matmul"] * 8 + ["add"] * 5 + ["sigmoid"] * 3 + ["tanh"] * 2 + ["mul"] * 3)
    assert [n.name for n in graph.inputs] == [f"{p}__input_{i}" for i in (2, 1, 0)]
    assert [n.name for n in graph.outputs] == [f"{p}__h_next", f"{p}__c_next"]
    assert graph.attrs["direction"] == "forward"

    for node in graph:
        fix_op = xgraph.op(node.name + "_fix")
        assert node.attrs["fix"] == fix_op.fix
        assert node.attrs["fix_round_mode"] == "DPU_ROUND" and node.attrs["fix_if_signed"] is True
        assert graph.tensor(node.name).shape == tuple(xgraph.op(node.name).shape)
        for tensor in node.inputs:  # inputs name producer nodes, never fix ops
            assert tensor in graph

    dense = graph.node(f"{p}__w_ii___input_0___bias_i")
    assert dense.inputs == [f"{p}__input_0"]
    assert set(dense.params) == {"weight", "bias"}
    weight = dense.params["weight"]
    assert weight.name == f"{p}__weight_ii"
    assert np.array_equal(weight.data, xgraph.op(f"{p}__weight_ii").const_array())
    assert weight.attrs["fix"] == xgraph.op(f"{p}__weight_ii_fix").fix
    assert dense.attrs["transpose_b"] is True
    recurrent = graph.node(f"{p}__w_hi___input_1")
    assert recurrent.inputs == [f"{p}__input_1"] and set(recurrent.params) == {"weight"}
    assert graph.node(f"{p}__h_next").inputs == [f"{p}__ot", f"{p}__c_temp"]
    assert graph.node(f"{p}__it").attrs["fix"] == (16, 15)
    order = [n.name for n in graph.topological_order()]
    assert order.index(f"{p}__c_next") < order.index(f"{p}__c_temp") < order.index(f"{p}__h_next")


def test_unfoldable_fix_stays_a_node_and_unused_const_becomes_a_node() -> None:
    g = XGraph("Odd")
    g.add_data("x", [2])
    g.add_fix("x", 8, 4)
    g.add_fix("x_fix", 4, 2)          # a fix of a fix is kept as its own node
    g.add_const("k", np.array([1.0, 2.0], np.float32))
    graph = xgraph_to_graph(g)
    assert [n.name for n in graph] == ["x", "x_fix_fix", "k"]
    assert graph.node("x").attrs["fix"] == (8, 4)
    assert graph.node("x_fix_fix").op_type == "fix"
    assert graph.node("x_fix_fix").inputs == ["x"]
    assert np.array_equal(graph.node("k").params["value"].data, [1.0, 2.0])
