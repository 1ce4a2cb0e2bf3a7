"""Hand-built graphs: building, lookup, topological order, cycles, text dump."""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared.graph import Graph, GraphCycleError, GraphError, Node, Tensor, scoped_name


def _lstm_gate() -> Graph:
    """x, h -> dense(x, W, b) + dense(h, U) -> sigmoid, with scoped names."""
    g = Graph("Cell", attrs={"direction": "forward"})
    s = lambda local: scoped_name(g, local)  # noqa: E731
    g.add(s("input_0"), "input", shape=(1, 4))
    g.add(s("input_1"), "input", shape=(1, 3))
    w = Tensor(s("weight_ii"), data=np.ones((3, 4), np.float32), attrs={"fix": (16, 12)})
    b = Tensor(s("bias_i"), data=np.zeros(3, np.float32))
    u = Tensor(s("weight_hi"), data=np.eye(3, dtype=np.float32))
    g.add(s("w_ii * input_0 + bias_i"), "dense", [s("input_0")],
          params={"weight": w, "bias": b}, attrs={"fix": (16, 12)}, shape=(1, 3))
    g.add(s("w_hi * input_1"), "dense", [s("input_1")], params={"weight": u}, shape=(1, 3))
    g.add(s("y_i"), "elemwise_add", [s("w_ii * input_0 + bias_i"), s("w_hi * input_1")],
          shape=(1, 3))
    g.add(s("it"), "sigmoid", [s("y_i")], attrs={"fix": (16, 15)}, shape=(1, 3))
    return g


def test_tensor() -> None:
    t = Tensor("w", data=[[1, 2], [3, 4]], dtype="float32")
    assert t.shape == (2, 2) and t.dtype == "float32" and t.data.dtype == np.float32
    assert t.is_param and t.ndim == 2
    activation = Tensor("a", shape=[1, 3])
    assert activation.shape == (1, 3) and activation.dtype == "float32" and not activation.is_param
    assert Tensor("i", dtype=np.int16).dtype == "int16"
    with pytest.raises(ValueError, match=r"shape \[3\] does not match its data's shape \[2\]"):
        Tensor("bad", shape=[3], data=np.zeros(2))
    with pytest.raises(ValueError, match="non-empty str"):
        Tensor("")
    assert repr(t) == "Tensor('w', shape=[2, 2], dtype='float32', data=yes)"


def test_node_defaults_and_validation() -> None:
    n = Node("a", "relu", inputs=["x"])
    assert n.outputs == ["a"] and n.params == {} and n.attrs == {}
    with pytest.raises(ValueError, match="inputs must be a list of tensor names"):
        Node("a", "relu", inputs="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="param 'weight' must be a Tensor"):
        Node("a", "dense", params={"weight": np.ones(2)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="lists an output tensor twice"):
        Node("a", "split", outputs=["o", "o"])


def test_lookup_and_structure() -> None:
    g = _lstm_gate()
    p = "Cell::"
    assert len(g) == 6 and repr(g) == "Graph('Cell', 6 nodes)"
    assert p + "y_i" in g and "y_i" not in g
    assert g.node(p + "it").attrs["fix"] == (16, 15)
    assert g.producer(p + "y_i").name == p + "y_i"
    assert g.producer("external") is None
    assert [n.name for n in g.consumers(p + "input_0")] == [p + "w_ii * input_0 + bias_i"]
    assert [n.name for n in g.predecessors(p + "y_i")] == [
        p + "w_ii * input_0 + bias_i", p + "w_hi * input_1"]
    assert [n.name for n in g.successors(p + "input_1")] == [p + "w_hi * input_1"]
    assert [n.name for n in g.inputs] == [p + "input_0", p + "input_1"]
    assert [n.name for n in g.outputs] == [p + "it"]
    assert g.tensor(p + "it").shape == (1, 3)
    dense = g.node(p + "w_ii * input_0 + bias_i")
    assert dense.params["weight"].attrs["fix"] == (16, 12)
    g.set_outputs([p + "y_i", p + "it"])
    assert [n.name for n in g.outputs] == [p + "y_i", p + "it"]
    g.set_inputs([p + "input_1"])
    assert [n.name for n in g.inputs] == [p + "input_1"]
    with pytest.raises(GraphError, match=r"outputs \['nope'\] are not nodes"):
        g.set_outputs(["nope"])
    with pytest.raises(KeyError, match="has no node 'nope'"):
        g.node("nope")


def test_duplicates_are_rejected() -> None:
    g = Graph("G")
    g.add("a", "input")
    with pytest.raises(GraphError, match="already has a node named 'a'"):
        g.add("a", "input")
    with pytest.raises(GraphError, match="tensor 'a' is already produced by node 'a'"):
        g.add("b", "relu", ["x"], outputs=["a"])
    with pytest.raises(GraphError, match="non-empty str"):
        Graph("")


def test_topological_order_is_stable() -> None:
    g = _lstm_gate()
    assert [n.name for n in g.topological_order()] == [n.name for n in g]
    g2 = Graph("Shuffled")
    g2.add("out", "relu", ["mid"])
    g2.add("mid", "add", ["a", "b"])
    g2.add("b", "input")
    g2.add("a", "input")
    g2.add("side", "relu", ["a"])
    assert [n.name for n in g2.topological_order()] == ["b", "a", "mid", "out", "side"]


def test_cycle_is_named() -> None:
    g = Graph("Loop")
    g.add("x", "input")
    g.add("a", "add", ["x", "c"])
    g.add("b", "relu", ["a"])
    g.add("c", "relu", ["b"])
    g.add("tail", "relu", ["c"])
    with pytest.raises(GraphCycleError, match="has a cycle: a -> b -> c -> a"):
        g.topological_order()
    assert issubclass(GraphCycleError, ValueError)


def test_dump_text() -> None:
    g = _lstm_gate()
    text = g.dump_text()
    lines = text.splitlines()
    assert lines[0] == "Graph 'Cell': 6 nodes"
    assert lines[1] == "  attrs: direction='forward'"
    assert lines[2] == "  inputs: Cell::input_0, Cell::input_1"
    assert lines[3] == "  outputs: Cell::it"
    assert lines[4] == "  [0] Cell::input_0 = input() -> Cell::input_0[1,4] float32"
    assert lines[6] == (
        "  [2] Cell::w_ii * input_0 + bias_i = dense(Cell::input_0) -> "
        "Cell::w_ii * input_0 + bias_i[1,3] float32  params{weight: Cell::weight_ii[3,4] "
        "float32 data {fix=(16, 12)}, bias: Cell::bias_i[3] float32 data}  {fix=(16, 12)}")
    assert lines[9] == (
        "  [5] Cell::it = sigmoid(Cell::y_i) -> Cell::it[1,3] float32  {fix=(16, 15)}")
    assert len(lines) == 10 and text.endswith("\n")
