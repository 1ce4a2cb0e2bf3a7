"""The Keras CNN flow end to end on the CNN example's trained network: calib -> quant_info.json
(+ bias_corr.npz) -> test; quant_model equals the neutral reference executor on the export graph
exactly (eagerly and in predict), the xmodel evaluates to the same codes, the deploy-check dumps
and ONNX are written; model files and Sequential models give the same bits; the config file and
target= behave as in the PyTorch flow; every misuse gets its catalogued error."""
from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import twins
from twins import read_quant_info
from nndct_shared.cnn_export import evaluate_xmodel, run_reference
from nndct_shared.config import default_config
from nndct_shared.graph import to_op_name
from nndct_shared.messages import NndctError
from nndct_shared.quant_info_float import read_float_quant_info
from pytorch_nndct.apis import torch_quantizer
from tf_nndct.cnn import KerasCnnQuantizer
from tf_nndct.cnn.layout import keras_array, torch_array
from tf_nndct.quantization.api import tf_quantizer

L = keras.layers


@pytest.fixture(scope="module")
def digits():
    return twins.digits_split()


@pytest.fixture(scope="module")
def digits_net():
    """(PyTorch DigitsNet with the example's trained weights, its Keras twin)."""
    torch_model = twins.trained_digits_net()
    return torch_model, twins.digits_net_keras(torch_model)


def calibrate(model, x: np.ndarray, out: Path, batch: int = 100, **kwargs) -> KerasCnnQuantizer:
    quantizer = tf_quantizer(model, None, "calib", str(out), **kwargs)
    for start in range(0, len(x), batch):
        quantizer.quant_model(x[start:start + batch])
    quantizer.export_quant_config()
    return quantizer


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return 100.0 * float((np.asarray(model(x)).argmax(1) == y).mean())


@pytest.fixture(scope="module")
def tested(digits_net, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("keras_cnn_flow")
    calibrate(digits_net[1], digits[0][:300], out)
    return tf_quantizer(digits_net[1], tf.TensorSpec((1, 8, 8, 1)), "test", str(out)), out


def test_calibration_result_and_accuracy(tested, digits_net, digits):
    quantizer, out = tested
    info = read_quant_info(out / "quant_info.json")
    assert list(info.param) == ["DigitsNet::conv1.weight", "DigitsNet::conv1.bias", "DigitsNet::dw.weight",
                                "DigitsNet::dw.bias", "DigitsNet::fc.weight", "DigitsNet::fc.bias"]
    # conv1 + bn1 fused into relu1, dw into its relu, flatten shape-only: the reference's placement
    # (nodes named as the reference 3.x names them; the captured Keras names are the traced ones)
    assert list(info.output) == ["DigitsNet::nndct_input_0", "DigitsNet::nndct_relu_2", "DigitsNet::nndct_relu_4",
                                 "DigitsNet::nndct_maxpool_5", "DigitsNet::nndct_dense_7"]
    assert [quantizer.captured.traced_names[n] for n in info.output] == [
        "DigitsNet::input_0", "DigitsNet::relu1", "DigitsNet::dw/relu", "DigitsNet::pool", "DigitsNet::fc"]
    assert all(bw == 8 for bw, _ in [*info.param.values(), *info.output.values()])
    assert (out / "bias_corr.npz").is_file()
    x, y = digits[2], digits[3]
    float_acc, quant_acc = accuracy(digits_net[1], x, y), accuracy(quantizer.quant_model, x, y)
    assert float_acc > 95 and abs(float_acc - quant_acc) <= 1.0


def test_quant_model_is_the_reference_executor_on_the_export_graph(tested, digits):
    quantizer, _ = tested
    x = digits[2][:64]
    out = np.asarray(quantizer.quant_model(x))
    graph = quantizer.export_graph()
    values = run_reference(graph, {"DigitsNet::nndct_input_0": torch_array(x)})
    assert np.array_equal(keras_array(values["DigitsNet::nndct_dense_7"]), out)
    assert np.array_equal(quantizer.quant_model.predict(x, batch_size=64, verbose=0), out)


def test_xmodel_dumps_and_onnx(tested, digits):
    quantizer, out = tested
    one = digits[2][:1]
    quantizer.quant_model(one)
    path = quantizer.export_xmodel(deploy_check=True)
    assert path == out / "DigitsNet_int.xmodel"
    graph = quantizer.export_graph()
    reference = run_reference(graph, {"DigitsNet::nndct_input_0": torch_array(one)})
    got = evaluate_xmodel(path, {to_op_name("DigitsNet::nndct_input_0"): torch_array(one)})
    for node in graph.nodes:
        op = to_op_name(node.name) + ("_fix" if node.attrs.get("fix") else "")
        assert np.array_equal(got[op], keras_array(reference[node.outputs[0]])) or node.op_type == "flatten", node.name
    dump = out / "deploy_check_data_int" / "DigitsNet"
    written = np.fromfile(dump / "DigitsNet__nndct_dense_7.bin", dtype=np.float32)
    assert np.array_equal(written, np.asarray(quantizer.quant_model(one)).reshape(-1))
    codes = np.fromfile(dump / "DigitsNet__nndct_input_0_fix.bin", dtype=np.int8)
    assert codes.size == 64
    ort = pytest.importorskip("onnxruntime")
    onnx_path = quantizer.export_onnx_model()
    # default session options, as the PyTorch flow's tests (uint8 activations, issue 17)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = digits[2][:32]
    name = session.get_inputs()[0].name
    got = np.concatenate([session.run(None, {name: torch_array(x[i:i + 1])})[0] for i in range(len(x))])
    want = np.asarray(quantizer.quant_model(x))
    # QuantizeLinear rounds ties to even where the DPU rounds them up: one step apart at most
    assert np.max(np.abs(got - want)) <= 2.0 ** -quantizer.runtime.fix_pos["DigitsNet::nndct_dense_7"]
    assert np.mean(got == want) > 0.5


def test_model_files_and_sequential_models_give_the_same_bits(digits_net, digits, tmp_path):
    keras_model = digits_net[1]
    sequential = keras.Sequential([keras.Input((8, 8, 1), name="image")] + [
        layer.__class__.from_config(layer.get_config()) for layer in keras_model.layers[1:]], name="DigitsNet")
    sequential.set_weights(keras_model.get_weights())
    keras_model.save(tmp_path / "float.keras")
    keras_model.save(tmp_path / "float.h5")
    x = digits[0][:200]
    outs, infos = {}, {}
    for kind, source in (("model", keras_model), ("sequential", sequential),
                         ("keras", str(tmp_path / "float.keras")), ("h5", str(tmp_path / "float.h5"))):
        calibrate(source, x, tmp_path / kind)
        quantizer = tf_quantizer(source, None, "test", str(tmp_path / kind))
        outs[kind] = np.asarray(quantizer.quant_model(digits[2]))
        infos[kind] = (tmp_path / kind / "quant_info.json").read_bytes()
    for kind in ("sequential", "keras", "h5"):
        assert np.array_equal(outs[kind], outs["model"]) and infos[kind] == infos["model"], kind


def _config_file(directory: Path, bit_width: int, **changes) -> str:
    data = default_config(bit_width, "DPU" if bit_width == 8 else "CPU").to_dict()
    data.update(changes)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"config_{bit_width}.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("case", ["config_4bit_maxmin", "target", "config_options"])
def test_config_file_and_target_as_in_the_pytorch_flow(case, digits_net, digits, tmp_path):
    """The same JSON config (4 bits, maxmin activations, no CLE) or the same DPU target gives the
    same calibration result and outputs in both frameworks."""
    torch_model, keras_model = digits_net
    if case == "target":
        kwargs = {"target": "DPUCZDX8G_ISA1_B4096"}
    elif case == "config_options":  # issue 17's options: per-channel float weights, narrow-range
        config = json.loads(Path(_config_file(tmp_path, 8, target_device="CPU")).read_text())
        tensors = config["tensor_quantize_config"]  # power-of-two mse activations, a float last layer
        tensors.setdefault("weights", {}).update(scale_type="float", per_channel=True, method="maxmin")
        tensors.setdefault("activation", {}).update(method="mse", calib_statistic_method="mean", narrow_range=True)
        config["keep_first_last_layer_accuracy"] = True
        path = tmp_path / "cfg.json"
        path.write_text(json.dumps(config))
        kwargs = {"quant_config_file": str(path)}
    else:
        config = json.loads(Path(_config_file(tmp_path, 4)).read_text())
        config["include_cle"] = False
        config["tensor_quantize_config"]["activation"]["method"] = "maxmin"
        path = tmp_path / "cfg.json"
        path.write_text(json.dumps(config))
        kwargs = {"quant_config_file": str(path), "bitwidth": 4}
    x = digits[0][:200]
    xt = twins.nchw(x)
    tq = torch_quantizer("calib", torch_model, xt[:1], output_dir=str(tmp_path / "t"), device="cpu", **kwargs)
    with torch.no_grad():
        for start in range(0, 200, 100):
            tq.quant_model(xt[start:start + 100])
    tq.export_quant_config()
    calibrate(keras_model, x, tmp_path / "k", **kwargs)
    t_info, k_info = read_quant_info(tmp_path / "t" / "quant_info.json"), read_quant_info(tmp_path / "k" / "quant_info.json")
    assert sorted(t_info.param.items()) == sorted(k_info.param.items())
    assert [v for v in t_info.output.values()] == [v for v in k_info.output.values()]
    widths = {bw for bw, _ in k_info.param.values()}
    assert widths == ({4} if case == "config_4bit_maxmin" else {8})  # config_options: biases
    if case == "config_options":  # every weight has per-channel float scales
        t_float, k_float = (read_float_quant_info(tmp_path / d / "quant_info_float.json") for d in ("t", "k"))
        assert t_float == k_float and "DigitsNet::dw.weight[0]" in k_float.param
    tq = torch_quantizer("test", torch_model, xt[:1], output_dir=str(tmp_path / "t"), device="cpu", **kwargs)
    kq = tf_quantizer(keras_model, None, "test", str(tmp_path / "k"), **kwargs)
    with torch.no_grad():
        t_out = tq.quant_model(twins.nchw(digits[2])).numpy()
    k_out = np.asarray(kq.quant_model(digits[2]))
    if case == "config_options":  # float scales and a float layer: sums not on 2^-k grids are not
        np.testing.assert_allclose(k_out, t_out, rtol=1e-5, atol=1e-5)  # exact (README), float32 apart
    else:
        assert np.array_equal(t_out, k_out)


def _raises(code: str, fn, *args, **kwargs) -> NndctError:
    with pytest.raises(NndctError) as info:
        fn(*args, **kwargs)
    assert info.value.msg_id == f"QUANTIZER_TF_{code}", str(info.value)
    return info.value


def test_errors_of_the_flow(digits_net, digits, tmp_path):
    model = digits_net[1]
    x = digits[0][:100]
    out = str(tmp_path / "run")
    _raises("NO_CALIB_RESULT", tf_quantizer, model, None, "test", out)
    _raises("UNKNOWN_TARGET", tf_quantizer, model, None, "calib", out, target="DPU_NOPE")
    assert not (tmp_path / "run").exists()
    calib = tf_quantizer(model, None, "calib", out)
    _raises("NO_CALIBRATION", calib.export_quant_config)
    _raises("EXPORT_MODE", calib.export_xmodel)
    bad = x[:2].copy()
    bad[0, 3, 3, 0] = np.inf
    calib.quant_model(bad)  # TENSOR_VALUE_INVALID: the batch is left out of calibration (the guide)
    _raises("CALIB_DATA_NONFINITE", calib.export_quant_config)  # no clean batch yet
    calib.quant_model(x)
    calib.export_quant_config()
    test = tf_quantizer(model, None, "test", out)
    _raises("NO_FORWARD", test.export_xmodel)
    test.quant_model(x[:4])
    _raises("XMODEL_BATCHSIZE", test.export_xmodel)
    _raises("QUANT_CONFIG_MISMATCH", tf_quantizer, model, None, "test", out, bitwidth=4)
    inp = keras.Input((8, 8, 1), name="image")
    other = keras.Model(inp, L.Dense(3, name="fc")(L.Flatten(name="flat")(L.Conv2D(2, 3, name="c")(inp))),
                        name="DigitsNet")
    _raises("CALIB_RESULT_MISMATCH", tf_quantizer, other, None, "test", out)
    np.savez(Path(out) / "bias_corr.npz", **{"DigitsNet::nndct_nope_1": np.zeros(3)})
    assert "no layer 'DigitsNet::nndct_nope_1' with a bias" in str(
        _raises("CNN_PARAM_FILE", tf_quantizer, model, None, "test", out))
    (Path(out) / "bias_corr.npz").write_bytes(b"not a zip")
    _raises("CNN_PARAM_FILE", tf_quantizer, model, None, "test", out)
    (Path(out) / "bias_corr.npz").unlink()
    _raises("NO_CALIB_RESULT", tf_quantizer, model, None, "test", out)
    unsupported = keras.Sequential([keras.Input((8, 8, 1)), L.UpSampling2D(name="up")], name="U")
    assert "'up'" in str(_raises("CNN_UNSUPPORTED_OP", tf_quantizer, unsupported, None, "calib", out))
    for name in ("report", "fast_finetune", "export_torch_script"):
        with pytest.raises(NotImplementedError):
            getattr(calib, name)()


def test_layer_configs_select_keras_layer_types_and_node_names(digits_net, digits, tmp_path):
    """`layer_type` matches the Keras class (last component: "DepthwiseConv2D"), `layer_name`
    a node name of the captured graph."""
    config = default_config(8, "CPU").to_dict()  # a DPU target would hold every width at 8
    overall = dict(config["overall_quantize_config"])
    config["layer_quantize_config"] = [
        {"layer_type": "keras.layers.DepthwiseConv2D", "layer_name": None,
         "quantizable_data_type": ["weights", "bias"], "overall_quantize_config": {**overall, "bit_width": 6}},
        {"layer_type": None, "layer_name": "DigitsNet::fc",
         "quantizable_data_type": ["weights", "bias", "activation"],
         "overall_quantize_config": {**overall, "bit_width": 4}},
    ]
    path = tmp_path / "layers.json"
    path.write_text(json.dumps(config))
    calibrate(digits_net[1], digits[0][:100], tmp_path / "out", quant_config_file=str(path))
    info = read_quant_info(tmp_path / "out" / "quant_info.json")
    widths = {name: bw for name, (bw, _) in {**info.param, **info.output}.items()}
    assert widths["DigitsNet::dw.weight"] == widths["DigitsNet::dw.bias"] == 6
    assert widths["DigitsNet::fc.weight"] == widths["DigitsNet::nndct_dense_7"] == 4
    assert widths["DigitsNet::conv1.weight"] == widths["DigitsNet::nndct_relu_2"] == 8


def test_open_input_sizes_are_fixed_by_the_input_signature(digits, tmp_path):
    """A fully convolutional model (Input((None, None, 1))) is captured on the signature's
    sizes; without a signature the capture names the problem."""
    keras.utils.set_random_seed(9)
    inp = keras.Input((None, None, 1), name="image")
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    model = keras.Model(inp, L.Dense(10, name="fc")(L.GlobalAveragePooling2D(name="gap")(x)), name="Fcn")
    _raises("INPUT_SIGNATURE", tf_quantizer, model, None, "calib", str(tmp_path))
    spec = tf.TensorSpec((1, 8, 8, 1), tf.float32)
    quantizer = tf_quantizer(model, spec, "calib", str(tmp_path))
    assert quantizer.graph.tensor("Fcn::nndct_input_0").shape == (1, 1, 8, 8)
    quantizer.quant_model(digits[0][:100])
    quantizer.export_quant_config()
    tested = tf_quantizer(model, spec, "test", str(tmp_path))
    out = np.asarray(tested.quant_model(digits[2][:20]))
    assert out.shape == (20, 10) and 0 < np.abs(out - np.asarray(model(digits[2][:20]))).max() < 0.1
