"""Ops with no quantized form in a quantized model (`nndct_shared.cnn.float_ops`): the session
keeps them in float with the FLOAT_OP warning naming them, leaves their params float, and
quantizes their output as an input where a quantized node (directly or through a shape-only
op) reads it, as the reference's quant_info.json `input` entries do."""
from __future__ import annotations

import numpy as np

from nndct_shared.cnn.capture import CapturedModel
from nndct_shared.cnn.session import CnnQuantSession, load_session_config
from nndct_shared.graph import Graph, Tensor
from nndct_shared.quant_mode import RunMode


def _captured() -> CapturedModel:
    """input -> linear -> layer_norm -> gelu -> reshape -> linear -> gelu (graph output)."""
    g = Graph("Mix")
    rng = np.random.default_rng(0)

    def w(name, shape):
        return Tensor(name, data=rng.standard_normal(shape).astype(np.float32))

    g.add("Mix::input_0", "input", shape=(2, 4, 6))
    g.add("Mix::l1", "linear", ["Mix::input_0"], params={"weight": w("Mix::l1.weight", (8, 6))}, shape=(2, 4, 8))
    g.add("Mix::ln", "layer_norm", ["Mix::l1"], attrs={"normalized_shape": (8,), "eps": 1e-5},
          params={"weight": w("Mix::ln.weight", (8,)), "bias": w("Mix::ln.bias", (8,))}, shape=(2, 4, 8))
    g.add("Mix::g1", "gelu", ["Mix::ln"], attrs={"approximate": "none"}, shape=(2, 4, 8))
    g.add("Mix::flat", "reshape", ["Mix::g1"], attrs={"shape": (2, 32)}, shape=(2, 32))
    g.add("Mix::l2", "linear", ["Mix::flat"], params={"weight": w("Mix::l2.weight", (5, 32))}, shape=(2, 5))
    g.add("Mix::g2", "gelu", ["Mix::l2"], attrs={"approximate": "tanh"}, shape=(2, 5))
    g.set_outputs(["Mix::g2"])
    return CapturedModel(g, layer_types={n.name: n.op_type for n in g}, quantized={n.name for n in g})


# the session names nodes as the reference 3.x does (params keep their module paths)
N = {"input_0": "Mix::nndct_input_0", "l1": "Mix::nndct_dense_1", "ln": "Mix::nndct_layer_norm_2",
     "g1": "Mix::nndct_GELU_3", "flat": "Mix::nndct_reshape_4", "l2": "Mix::nndct_dense_5",
     "g2": "Mix::nndct_GELU_6"}


def test_float_ops_leave_the_quantized_part(tmp_path, caplog):
    captured = _captured()
    session = CnnQuantSession(captured, load_session_config(None, 8), RunMode.CALIB, tmp_path)
    assert session.float_nodes == [N["ln"], N["g1"], N["g2"]]
    assert "QUANTIZER_TORCH_FLOAT_OP" in caplog.text
    assert f"{N['ln']} (layer_norm), {N['g1']} (gelu), {N['g2']} (gelu)" in caplog.text
    assert captured.quantized == {N["input_0"], N["l1"], N["flat"], N["l2"]}
    # g1 is read by the quantized part through the shape-only reshape: an input; g2 is an output
    assert captured.quant_inputs == {N["g1"]}
    assert list(session.plan.params) == ["Mix::l1.weight", "Mix::l2.weight"]   # norm params stay float
    kinds = {name: t.kind for name, t in session.plan.outputs.items()}
    assert kinds == {N["input_0"]: "input", N["l1"]: "activation", N["g1"]: "input",
                     N["l2"]: "activation"}
