"""graph_md5 (quant_info.json's "graph_md5"): covers the structure, not weights or the batch."""
from __future__ import annotations

import copy

import numpy as np

from nndct_shared.graph import Graph, Tensor
from nndct_shared.graph.fingerprint import graph_md5


def _graph(batch: int = 1) -> Graph:
    g = Graph("Net")
    g.add("x", "input", shape=(batch, 2, 4, 4))
    g.add("c", "conv2d", ["x"], attrs=dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                                           groups=1),
          params={"weight": Tensor("c.weight", data=np.ones((3, 2, 3, 3), np.float32))}, shape=(batch, 3, 4, 4))
    g.add("r", "relu6", ["c"], shape=(batch, 3, 4, 4))
    g.add("f", "reshape", ["r"], attrs={"shape": (batch, 48)}, shape=(batch, 48))
    return g


def test_graph_md5_is_stable_and_ignores_values_and_the_batch():
    base = graph_md5(_graph())
    assert base == graph_md5(_graph()) and len(base) == 32
    assert graph_md5(_graph(batch=64)) == base              # calib and test batches differ
    g = _graph()
    g.node("c").params["weight"].data = np.full((3, 2, 3, 3), 7, np.float32)  # CLE, bias corr., retraining
    g.node("r").attrs["clip"] = (1.0, 2.0, 3.0)             # CLE's clip levels
    g.node("r").attrs["fix"] = (8, 4)                       # calibration results
    assert graph_md5(g) == base


def test_graph_md5_changes_with_the_structure():
    base = graph_md5(_graph())
    changes = []
    g = _graph()
    g.node("c").attrs["padding"] = (0, 0)
    changes.append(g)
    g = _graph()
    g.node("c").params["weight"] = Tensor("c.weight", data=np.ones((3, 2, 1, 1), np.float32))
    changes.append(g)
    g = copy.deepcopy(_graph())
    g.node("r").op_type = "relu"
    changes.append(g)
    g = _graph()
    g.tensors["f"] = Tensor("f", (1, 6, 8))
    changes.append(g)
    assert len({graph_md5(c) for c in changes} | {base}) == len(changes) + 1
