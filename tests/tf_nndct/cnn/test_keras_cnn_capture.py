"""The Keras capture: every supported layer is captured as the op registry's contract says
(validated), the captured float graph computes what the Keras model computes (run by the
neutral reference executor), names follow the documented scheme, and every unsupported layer
or layout is refused with QUANTIZER_TF_CNN_UNSUPPORTED_OP naming the layer."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from nndct_shared.cnn_export import run_reference
from nndct_shared.cnn_export.validate import validate_cnn_graph
from nndct_shared.graph.ops import CNN_OPS
from nndct_shared.messages import NndctError, use_frontend
from tf_nndct.cnn.capture import capture_keras_model
from tf_nndct.cnn.layout import keras_array, torch_array
from twins import digits_images, sequences

L = keras.layers


def _randomize_bn(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.uniform(-0.3, 0.3, shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            layer.beta.assign(rng.uniform(-0.2, 0.2, shape))


def _capture(model: keras.Model, **kwargs):
    with use_frontend("tf"):
        return capture_keras_model(model, **kwargs)


def _float_outputs(capture, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The captured graph run in float by the reference executor, outputs in Keras layout."""
    feeds = {capture.input_nodes[k]: torch_array(x) for k, x in enumerate(inputs)}
    values = run_reference(capture.graph, feeds)
    return [keras_array(values[ref.tensor]) for ref in capture.outputs]


def _assert_float_equivalent(model: keras.Model, inputs: list[np.ndarray], atol: float = 2e-5):
    capture = _capture(model)
    validate_cnn_graph(capture.graph)
    got = _float_outputs(capture, inputs)
    want = model(inputs if len(inputs) > 1 else inputs[0])
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=1e-5)
    return capture


def two_d_model() -> keras.Model:
    """Every 2-D layer of the Keras CNN flow in one functional model."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((9, 9, 3), name="x")
    x = L.Conv2D(8, 3, padding="same", name="c1")(inp)
    x = L.BatchNormalization(name="bn1")(x)                           # folded into c1
    x = L.ReLU(name="r1")(x)
    a = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6", name="dw")(x)
    b = L.SeparableConv2D(16, 3, padding="same", dilation_rate=1, name="sep")(x)
    b = L.BatchNormalization(name="bn2")(b)                           # folded into sep's pointwise
    y = L.Add(name="add")([a, b])
    y = L.LeakyReLU(0.2, name="lr")(y)
    t = L.Conv2DTranspose(6, 4, strides=2, padding="same", name="up")(y)
    t = L.MaxPooling2D(2, name="mp")(t)
    t = L.AveragePooling2D(3, strides=2, padding="same", name="ap")(t)
    c2 = L.Conv2D(6, 1, strides=2, padding="same", name="c2")(y)
    c = L.Concatenate(name="cat")([t, c2])
    c = L.Subtract(name="sub")([c, L.Dense(12, name="d4")(c)])       # Dense on a feature map: 1x1 conv
    g = L.GlobalAveragePooling2D(name="gap")(c)
    m = L.GlobalMaxPooling2D(keepdims=True, name="gmp")(c)
    f = L.Flatten(name="flat")(L.MaxPooling2D(3, name="mp2")(y))
    f = L.Dropout(0.3, name="drop")(f)
    f = L.BatchNormalization(name="bn3")(f)                           # per feature of a flattened map
    f = L.Dense(10, activation="relu", name="d1")(f)
    f = L.BatchNormalization(name="bn4")(f)                           # after relu: standalone scale
    o = L.Concatenate(name="cat2")([g, L.Flatten(name="flat2")(m), f])
    o = L.Multiply(name="mul")([o, L.Activation("sigmoid", name="gate")(o)])
    o = L.Dense(5, activation="softmax", name="head")(o)
    model = keras.Model(inp, o, name="TwoD")
    _randomize_bn(model)
    return model


def test_every_2d_layer_is_captured_per_contract_and_float_equivalent():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 9, 9, 3)).astype(np.float32)
    capture = _assert_float_equivalent(two_d_model(), [x])
    ops = [n.op_type for n in capture.graph.topological_order()]
    for op in ("input", "conv2d", "relu", "relu6", "add", "leaky_relu", "conv_transpose2d", "max_pool2d",
               "avg_pool2d", "concat", "sub", "adaptive_avg_pool2d", "adaptive_max_pool2d", "flatten",
               "scale", "linear", "mul", "sigmoid", "softmax"):
        assert op in ops, op
    assert all(op in CNN_OPS for op in ops)
    assert ops.count("scale") == 2  # bn3 (after a flatten) and bn4 (after relu); bn1, bn2 folded
    graph = capture.graph
    assert graph.node("TwoD::sep/depthwise").params["weight"].name == "TwoD::sep.depthwise.weight"
    assert graph.node("TwoD::sep").params["bias"].name == "TwoD::sep.pointwise.bias"
    assert graph.node("TwoD::c1").params["bias"].name == "TwoD::c1.bias"
    assert graph.node("TwoD::dw").attrs["groups"] == 8 and graph.node("TwoD::dw").params["weight"].shape == (16, 1, 3, 3)
    assert graph.node("TwoD::d4").op_type == "conv2d" and graph.node("TwoD::d4").attrs["kernel"] == (1, 1)
    assert graph.node("TwoD::ap").attrs == {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1), "ceil_mode": False,
                                            "count_include_pad": False}
    assert graph.node("TwoD::up").attrs["padding"] == (1, 1) and graph.node("TwoD::up").attrs["output_padding"] == (0, 0)
    assert graph.node("TwoD::cat").attrs["axis"] == 1
    assert graph.node("TwoD::head/softmax").attrs["dim"] == 1
    assert capture.captured.layer_types["TwoD::c1"] == "keras.layers.Conv2D"
    assert capture.captured.layer_types["TwoD::dw/relu6"] == "relu6"
    assert capture.graph.tensor("TwoD::input_0").shape == (1, 3, 9, 9)


def test_one_d_layers_and_ceil_mode_pools():
    keras.utils.set_random_seed(4)
    inp = keras.Input((15, 8), name="seq")
    x = L.Conv1D(12, 3, strides=2, padding="same", activation="relu", name="conv")(inp)     # 15 -> 8
    x = L.DepthwiseConv1D(3, padding="same", name="dw")(x)
    x = L.SeparableConv1D(6, 3, padding="valid", name="sep")(x)                           # 8 -> 6
    x = L.BatchNormalization(name="bn")(x)
    x = L.MaxPooling1D(3, strides=2, padding="same", name="pool")(x)                      # 6 -> 3, pads (0, 1)
    y = L.AveragePooling1D(2, strides=2, padding="same", name="apool")(x)                 # 3 -> 2, pads (0, 1)
    z = L.GlobalAveragePooling1D(name="gap")(x)
    out = L.Concatenate(name="cat")([L.Flatten(name="flat")(y), z])
    model = keras.Model(inp, L.Dense(3, name="fc")(out), name="OneD")
    _randomize_bn(model)
    x = np.random.default_rng(1).uniform(-1, 1, (3, 15, 8)).astype(np.float32)
    capture = _assert_float_equivalent(model, [x])
    pool = capture.graph.node("OneD::pool")
    assert pool.op_type == "max_pool1d" and pool.attrs["ceil_mode"] is True and pool.attrs["padding"] == (0,)
    assert capture.graph.node("OneD::apool").attrs["ceil_mode"] is True
    assert capture.graph.node("OneD::conv").attrs["padding"] == (1,)


@pytest.mark.parametrize("kernel,strides,padding,output_padding", [
    (4, 2, "same", None), (2, 2, "valid", None), (3, 1, "same", None), (3, 2, "valid", 1),
    (2, 3, "valid", None), (4, 2, "valid", 1)])
def test_conv_transpose_paddings(kernel, strides, padding, output_padding):
    keras.utils.set_random_seed(5)
    inp = keras.Input((5, 6, 3))
    out = L.Conv2DTranspose(4, kernel, strides=strides, padding=padding, output_padding=output_padding,
                            name="up")(inp)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 5, 6, 3)).astype(np.float32)
    _assert_float_equivalent(keras.Model(inp, out, name="Up"), [x])


def test_reshapes_sequential_nested_and_multi_io_models():
    keras.utils.set_random_seed(6)
    block = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, padding="same", name="conv"),
                              L.ReLU(name="relu")], name="block")
    a, b = keras.Input((8, 8, 1), name="a"), keras.Input((64,), name="b")
    x = block(a)
    y = L.Reshape((8, 8, 1), name="unflat")(b)                      # one channel: layout-neutral
    y = L.Conv2D(4, 3, padding="same", name="conv_b")(y)
    s = L.Add(name="add")([x, y])
    flat = L.Reshape((256,), name="flat")(s)                         # a flatten for the Dense after it
    out1 = L.Dense(6, name="fc")(flat)
    out2 = L.GlobalAveragePooling2D(name="gap")(s)
    model = keras.Model([a, b], [out1, out2], name="Multi")
    xa, xb = digits_images(3), digits_images(3, start=10).reshape(3, 64)
    capture = _assert_float_equivalent(model, [xa, xb])
    names = [n.name for n in capture.graph.topological_order()]
    assert names[:2] == ["Multi::input_0", "Multi::input_1"]
    assert "Multi::block/conv" in names and capture.graph.node("Multi::flat").op_type == "reshape"
    assert capture.graph.node("Multi::flat").attrs["shape"] == (1, 256)

    seq = keras.Sequential([keras.Input((16, 8)), L.Conv1D(4, 3, name="c"), L.Flatten(name="f"),
                            L.Dense(2, name="d")], name="Seq")
    _assert_float_equivalent(seq, [sequences(2)])


def test_relu6_and_silu_conversion_flags_and_the_dpu_leaky_slope(caplog):
    inp = keras.Input((4, 4, 2))
    x = L.ReLU(max_value=6.0, name="r6")(inp)
    x = L.Activation("silu", name="silu")(x)
    x = L.LeakyReLU(0.1, name="lr")(x)
    model = keras.Model(inp, x, name="Acts")
    capture = _capture(model, convert_relu6_to_relu=True, convert_silu_to_hswish=True)
    ops = {n.name: n for n in capture.graph.nodes}
    assert ops["Acts::r6"].op_type == "relu" and ops["Acts::silu"].op_type == "hardswish"
    assert ops["Acts::lr"].attrs["alpha"] == 0.1015625
    assert "QUANTIZER_TF_LEAKYRELU" in caplog.text


def _refused(model: keras.Model, layer: str, words: str) -> None:
    with pytest.raises(NndctError) as info:
        _capture(model)
    assert info.value.msg_id == "QUANTIZER_TF_CNN_UNSUPPORTED_OP"
    assert f"'{layer}'" in str(info.value) and words in str(info.value), str(info.value)


def _single(layer: L.Layer, shape=(8, 8, 3), after=None) -> keras.Model:
    inp = keras.Input(shape)
    x = layer(inp)
    return keras.Model(inp, after(x) if after else x, name="M")


def test_zero_padding_and_asymmetric_same_become_pad_nodes():
    """ZeroPadding1D/2D is a constant-zero pad node; a 'same' conv that pads one more element
    after than before (stride 2 on an even size, an even kernel) reads a `<layer>/pad` node and
    pads nothing itself, as torch writes it (F.pad, then the conv)."""
    inp = keras.Input((8, 8, 3))
    x = L.ZeroPadding2D(((1, 2), (0, 3)), name="zp")(inp)                       # 11 x 11
    x = L.Conv2D(4, 3, strides=2, padding="same", name="c")(x)                   # pads (1, 1): 6 x 6
    x = L.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)           # pads (0, 1): 3 x 3
    x = L.SeparableConv2D(5, 2, padding="same", name="sep")(x)                   # pads (0, 1)
    graph = _capture(keras.Model(inp, x, name="M")).graph
    order = [(n.name, n.op_type) for n in graph.topological_order()]
    assert [op for _, op in order] == ["input", "pad", "conv2d", "pad", "conv2d", "pad", "conv2d", "conv2d"]
    assert graph.node("M::zp").attrs == {"pads": ((0, 0), (0, 0), (1, 2), (0, 3)), "mode": "constant", "value": 0.0}
    assert graph.node("M::c").attrs["padding"] == (1, 1) and graph.node("M::c").inputs == ["M::zp"]
    for layer in ("dw", "sep/depthwise"):
        pad = graph.node(f"M::{layer.split('/')[0]}/pad")
        assert pad.attrs["pads"] == ((0, 0), (0, 0), (0, 1), (0, 1))
        assert graph.node(f"M::{layer}").attrs["padding"] == (0, 0) and graph.node(f"M::{layer}").inputs == [pad.name]
    assert tuple(graph.tensor("M::dw/pad").shape) == (1, 4, 7, 7)
    seq = keras.Input((9, 2))
    y = L.ZeroPadding1D((2, 0), name="zp")(seq)
    y = L.Conv1D(3, 4, padding="same", name="c")(y)                              # kernel 4 pads (1, 2)
    graph = _capture(keras.Model(seq, y, name="S")).graph
    assert graph.node("S::zp").attrs["pads"] == ((0, 0), (0, 0), (2, 0))
    assert graph.node("S::c/pad").attrs["pads"] == ((0, 0), (0, 0), (1, 2)) and graph.node("S::c").attrs["padding"] == (0,)


def test_unsupported_layers_and_layouts_are_refused_naming_the_layer():
    _refused(_single(L.UpSampling2D(name="up")), "up", "UpSampling2D")
    _refused(_single(L.Conv1D(4, 3, padding="causal", name="c"), shape=(8, 3)), "c", "causal")
    _refused(_single(L.Conv2DTranspose(4, 3, strides=2, padding="same", name="t")), "t", "asymmetrically")
    _refused(_single(L.Conv2D(4, 3, activation="gelu", name="g")), "g", "activation 'gelu'")
    _refused(_single(L.ReLU(threshold=0.5, name="r")), "r", "threshold")
    _refused(_single(L.ReLU(max_value=4.0, name="r")), "r", "max_value=4.0")
    _refused(_single(L.Flatten(name="f")), "f", "an output of the model")
    _refused(_single(L.Flatten(name="f"), after=L.ReLU(name="r")), "f", "an output of the model")
    _refused(_single(L.Flatten(name="f"), after=L.Softmax(name="s")), "f", "output of the model")
    _refused(_single(L.Reshape((3, 8, 8), name="rs")), "rs", "channels-last")
    _refused(_single(L.Lambda(lambda t: t * 2, name="lam")), "lam", "Lambda")

    class MyConv(L.Conv2D):
        pass

    _refused(_single(MyConv(2, 3, name="mine")), "mine", "MyConv")
    inp = keras.Input((8, 8, 3))
    shared = L.Conv2D(3, 3, padding="same", name="shared")
    _refused(keras.Model(inp, shared(shared(inp))), "shared", "called more than once")
    flat = L.Flatten(name="f")(inp)
    _refused(keras.Model(inp, L.Add(name="add")([flat, flat])), "add", "flattened feature map of 'f'")
    bn = L.BatchNormalization(axis=1, name="bn")
    _refused(_single(bn), "bn", "axis=1")
