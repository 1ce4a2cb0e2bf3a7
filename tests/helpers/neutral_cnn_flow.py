"""The CNN flow driven through the neutral session alone (no framework): a hand-built captured
graph, calibrated in NumPy, written to quant_info.json, read back in test mode and exported.

Used in-process by tests/nndct_shared/cnn/test_session.py and run as a script there in a fresh
interpreter, to show that planning, calibration results and exports need neither torch nor
tensorflow (a Keras front end only has to capture).
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nndct_shared.cnn.capture import CapturedModel
from nndct_shared.cnn.session import CnnQuantSession, load_session_config
from nndct_shared.cnn.settings import make_observer
from nndct_shared.cnn_export import evaluate_xmodel, run_reference
from nndct_shared.cnn_export.flatten_fold import torch_value
from nndct_shared.graph import Graph, Tensor, to_op_name
from nndct_shared.quant_mode import RunMode


def digits_images(count: int) -> np.ndarray:
    from sklearn.datasets import load_digits

    return (load_digits().images[:count, None].astype(np.float32) / 16.0)


def captured_cnn(seed: int = 0) -> CapturedModel:
    """input [N,1,8,8] -> conv 4 -> relu -> conv 6 -> relu -> maxpool 2 -> flatten -> linear 10,
    seeded weights (the session's exactness is under test, not accuracy)."""
    rng = np.random.default_rng(seed)
    g = Graph("Neutral")

    def weights(name: str, shape: tuple[int, ...]) -> dict[str, Tensor]:
        return {"weight": Tensor(f"{name}.weight", data=(rng.standard_normal(shape) * 0.3).astype(np.float32)),
                "bias": Tensor(f"{name}.bias", data=(rng.standard_normal(shape[0]) * 0.1).astype(np.float32))}

    conv = dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    g.add("Neutral::input_0", "input", shape=(1, 1, 8, 8))
    g.add("Neutral::c1", "conv2d", ["Neutral::input_0"], attrs=conv, params=weights("Neutral::c1", (4, 1, 3, 3)),
          shape=(1, 4, 8, 8))
    g.add("Neutral::r1", "relu", ["Neutral::c1"], shape=(1, 4, 8, 8))
    g.add("Neutral::c2", "conv2d", ["Neutral::r1"], attrs=conv, params=weights("Neutral::c2", (6, 4, 3, 3)),
          shape=(1, 6, 8, 8))
    g.add("Neutral::r2", "relu", ["Neutral::c2"], shape=(1, 6, 8, 8))
    g.add("Neutral::pool", "max_pool2d", ["Neutral::r2"],
          attrs=dict(kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False), shape=(1, 6, 4, 4))
    g.add("Neutral::flat", "flatten", ["Neutral::pool"], attrs=dict(start_dim=1, end_dim=3), shape=(1, 96))
    g.add("Neutral::fc", "linear", ["Neutral::flat"], params=weights("Neutral::fc", (10, 96)), shape=(1, 10))
    names = {n.name for n in g.nodes}
    return CapturedModel(g, layer_types={n.name: n.op_type for n in g.nodes}, quantized=names)


def calibrate(session: CnnQuantSession, images: np.ndarray) -> dict[str, Any]:
    """Fix positions of every planned tensor: params from their own values, activations from
    the reference executor on `images` with the params already quantized (per-tensor ones: the
    export graph carries one fix position per tensor) (NumPy only)."""
    fix_pos: dict[str, Any] = {}
    for name in session.plan.params:
        observer = make_observer(session.settings[name])
        tensor = next(t for n in session.graph.nodes for t in n.params.values() if t.name == name)
        observer.observe(tensor.data)
        fix_pos[name] = observer.fix_pos
    params_only = session.export_graph({k: v for k, v in fix_pos.items() if not isinstance(v, tuple)},
                                       None)
    values = run_reference(params_only, {session.graph.inputs[0].name: images})
    for name in session.plan.outputs:
        observer = make_observer(session.settings[name])
        observer.observe(values[session.graph.node(name).outputs[0]])
        fix_pos[name] = observer.fix_pos
    return fix_pos


def run_flow(out_dir: Path) -> dict[str, Any]:
    """calib -> quant_info.json -> test -> xmodel + dumps; returns what the tests check."""
    images = digits_images(64)
    config = load_session_config(None, 8)
    calib_captured = captured_cnn()
    calib = CnnQuantSession(calib_captured, config, RunMode.CALIB, out_dir)
    pairs = calib.equalize()
    fix_pos = calibrate(calib, images)
    path = calib.export_quant_config(fix_pos, {})

    test = CnnQuantSession(captured_cnn(), config, RunMode.TEST, out_dir)
    test.equalize()
    loaded = test.read_fix_positions()
    one = images[:1]
    shapes = {n.outputs[0]: (1,) + tuple(test.graph.tensor(n.outputs[0]).shape[1:]) for n in test.graph.nodes}
    graph = test.export_graph(loaded, shapes)
    source = graph.inputs[0].name
    values = run_reference(graph, {source: one})
    xmodel = test.export_xmodel(graph, values, out_dir)
    got = evaluate_xmodel(xmodel, {to_op_name(source): one})
    exact = all(np.array_equal(torch_value(graph, n, got[to_op_name(n.name) + ("_fix" if n.attrs.get("fix") else "")]),
                               values[n.outputs[0]]) for n in graph.nodes)
    return {
        "cle_pairs": [(p.first, p.second) for p in pairs],
        "params": list(calib.plan.params), "outputs": list(calib.plan.outputs),
        "fix_pos": fix_pos, "loaded": loaded, "quant_info": path.name, "xmodel": xmodel.name,
        "graph_md5": calib.graph_md5,
        "xmodel_matches_reference": exact,
        "same_weights": all(np.array_equal(a.data, b.data) for a, b in zip(
            (t for n in calib.graph.nodes for t in n.params.values()),
            (t for n in test.graph.nodes for t in n.params.values()))),
        "frameworks": sorted(m for m in ("torch", "tensorflow", "keras") if m in sys.modules),
    }


if __name__ == "__main__":
    result = run_flow(Path(sys.argv[1]))
    print(json.dumps({k: v for k, v in result.items() if k not in ("fix_pos", "loaded")}
                     | {"fix_pos": copy.deepcopy(result["fix_pos"])}, default=int))
