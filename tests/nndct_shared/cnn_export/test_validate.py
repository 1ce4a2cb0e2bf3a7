"""validate_cnn_graph: real graphs pass; each contract break is a CNN_GRAPH_INVALID error that
names the node and the problem."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from nndct_shared.cnn_export import validate_cnn_graph
from nndct_shared.graph import Graph, Tensor
from nndct_shared.messages import ModelStructureError


def test_real_graphs_are_valid(nets) -> None:
    for graph in nets.values():
        validate_cnn_graph(graph)


def _conv_node(graph: Graph):
    return next(n for n in graph.nodes if n.op_type == "conv2d")


def _break_unknown_op(g):
    _conv_node(g).op_type = "conv3d"
    return "is not in the CNN op contract"


def _break_missing_attr(g):
    del _conv_node(g).attrs["stride"]
    return "missing required attr(s) ['stride']"


def _break_param_off_grid(g):
    w = _conv_node(g).params["weight"]
    w.data = w.data + np.float32(2.0 ** -(w.attrs["fix"][1] + 2))
    return "is not a 8-bit code"


def _break_fix_format(g):
    _conv_node(g).attrs["fix"] = (8,)
    return "attr 'fix' must be (bit_width, fix_point) ints"


def _break_weight_shape(g):
    node = _conv_node(g)
    node.attrs["kernel"] = (5, 5)
    return "does not match kernel [5, 5]"


def _break_input_fix_index(g):
    _conv_node(g).attrs["input_fix"] = {3: (8, 4)}
    return "input_fix index 3 does not name one of the node's 1 input(s)"


def _break_output_shape(g):
    del g.tensors[_conv_node(g).outputs[0]]
    return "has no recorded shape"


def _break_unknown_param_role(g):
    node = next(n for n in g.nodes if n.op_type == "relu")
    node.params["weight"] = Tensor("x.w", data=np.ones(2, np.float32))
    return "param role 'weight' is not allowed for relu"


def _break_binary_arity(g):
    node = next(n for n in g.nodes if n.op_type == "linear")
    node.op_type, node.params = "add", {}
    return "add takes 2 input tensors"


@pytest.mark.parametrize("breaker", [
    _break_unknown_op, _break_missing_attr, _break_param_off_grid, _break_fix_format,
    _break_weight_shape, _break_input_fix_index, _break_output_shape, _break_unknown_param_role,
    _break_binary_arity,
], ids=lambda f: f.__name__[7:])
def test_contract_breaks_are_named(lenet_graph, breaker) -> None:
    graph = copy.deepcopy(lenet_graph)
    expected = breaker(graph)
    with pytest.raises(ModelStructureError) as info:
        validate_cnn_graph(graph)
    text = str(info.value)
    assert "QUANTIZER_TORCH_CNN_GRAPH_INVALID" in text and "Graph 'LeNet'" in text
    assert expected in text
    assert isinstance(info.value, RuntimeError)


def test_conv_node_is_named_in_the_error(lenet_graph) -> None:
    graph = copy.deepcopy(lenet_graph)
    node = _conv_node(graph)
    node.attrs["groups"] = 0
    with pytest.raises(ModelStructureError, match=f"node '{node.name}' \\(conv2d\\): attr "
                       "'groups' must be an int >= 1, got 0"):
        validate_cnn_graph(graph)


def test_cycle_and_non_graph_are_rejected() -> None:
    g = Graph("Loop")
    g.add("x", "input", shape=(1, 4))
    g.add("a", "relu", ["b"], shape=(1, 4))
    g.add("b", "relu", ["a"], shape=(1, 4))
    with pytest.raises(ModelStructureError, match="has a cycle"):
        validate_cnn_graph(g)
    with pytest.raises(ModelStructureError, match="expected a nndct_shared.graph.Graph, got dict"):
        validate_cnn_graph({})
