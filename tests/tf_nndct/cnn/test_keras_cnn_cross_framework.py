"""The same CNN quantized by torch_quantizer and by tf_quantizer gives the same bits: fix
positions (quant_info.json), quant_model outputs (array_equal), xmodels and deploy-check dumps
byte for byte, names aside.

Four pairs (`twins.py`): the CNN example's network, a residual 2-D net (relu6, separable conv
with a folded BatchNorm, add, leaky relu, transposed conv, avg / global pools, concat), a
1-D net (stride-2 conv, standalone BatchNorm, a 'same' pool in ceil mode, Dense on a
sequence) and a padded net (ZeroPadding2D; 'same' convs, depthwise included, that pad one more
element after than before, which Keras captures as a pad node before the conv, as torch writes
them with F.pad), each calibrated in both frameworks on the same real images with the default config
(cross-layer equalization and bias correction on), then run in test mode.

Names: the graph name is the Keras model's name (= the PyTorch class name here) and parameter
names are `<Model>::<layer>.<param>` in both front ends, so they agree; node names follow each
front end's scheme, so nodes are mapped by their position in the topological order (`node_map`:
the op types must agree position by position). Where both front ends name nodes the same way,
the map is the identity and the files are compared as they are.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import twins
from twins import read_quant_info
from nndct_shared.cnn_export.xmodel import build_cnn_xgraph
from nndct_shared.graph import Graph, Node, Tensor, to_op_name
from nndct_shared.xmodel import xgraph_to_bytes
from pytorch_nndct.apis import torch_quantizer
from tf_nndct.quantization.api import tf_quantizer

CALIB, BATCH = 200, 50


def node_map(torch_graph: Graph, keras_graph: Graph) -> dict[str, str]:
    """Torch node name -> Keras node name, by position in the topological order (the documented
    rule; the identity when both front ends name nodes alike)."""
    t_order, k_order = torch_graph.topological_order(), keras_graph.topological_order()
    assert [n.op_type for n in t_order] == [n.op_type for n in k_order]
    return {a.name: b.name for a, b in zip(t_order, k_order)}


def rename(text: str, names: dict[str, str]) -> str:
    """`text` with torch node names (and their xmodel / file forms) replaced by Keras ones."""
    pairs = {**names, **{to_op_name(a): to_op_name(b) for a, b in names.items()}}
    for old in sorted(pairs, key=len, reverse=True):
        text = text.replace(old, pairs[old])
    return text


def renamed_graph(graph: Graph, names: dict[str, str]) -> Graph:
    """A copy of `graph` with its nodes (and their output tensors) renamed by `names`."""
    out = Graph(graph.name, graph.attrs)
    for node in graph.topological_order():
        out.add_node(Node(names.get(node.name, node.name), node.op_type, dict(node.attrs),
                          [names.get(t, t) for t in node.inputs], [names.get(t, t) for t in node.outputs],
                          dict(node.params)))
        for t in node.outputs:
            meta = graph.tensor(t)
            out.set_tensor(Tensor(names.get(t, t), shape=meta.shape, dtype=meta.dtype))
    out.set_inputs([names.get(n.name, n.name) for n in graph.inputs])
    out.set_outputs([names.get(n.name, n.name) for n in graph.outputs])
    return out


def _files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


PAIRS = {
    "digits_net": (twins.DigitsNet, twins.digits_net_keras, lambda n: twins.digits_images(n)),
    "resnet2d": (twins.ResNet2d, twins.resnet2d_keras, lambda n: twins.digits_images(n)),
    "net1d": (twins.Net1d, twins.net1d_keras, lambda n: twins.sequences(n)),
    "padded": (twins.Padded, twins.padded_keras, lambda n: twins.digits_images(n)),
}


@pytest.fixture(scope="module", params=list(PAIRS))
def both(request, tmp_path_factory):
    """Calibrate and test both flows on the same data; export xmodels with dumps from the same
    single image."""
    torch_cls, keras_builder, data = PAIRS[request.param]
    torch.manual_seed(1)
    torch_model = torch_cls().eval()
    twins.randomize_bn(torch_model, 2)
    keras_model = keras_builder(torch_model)
    x = data(CALIB + 50)
    xt = twins.nchw(x)
    with torch.no_grad():
        np.testing.assert_allclose(torch_model(xt).numpy(), np.asarray(keras_model(x)), atol=1e-5)
    root = tmp_path_factory.mktemp(request.param)
    tdir, kdir = root / "torch", root / "keras"
    tq = torch_quantizer("calib", torch_model, xt[:1], output_dir=str(tdir), device="cpu")
    kq = tf_quantizer(keras_model, None, "calib", str(kdir))
    with torch.no_grad():
        for start in range(0, CALIB, BATCH):
            tq.quant_model(xt[start:start + BATCH])
            kq.quant_model(x[start:start + BATCH])
    tq.export_quant_config()
    kq.export_quant_config()
    tq = torch_quantizer("test", torch_model, xt[:1], output_dir=str(tdir), device="cpu")
    kq = tf_quantizer(keras_model, None, "test", str(kdir))
    with torch.no_grad():
        t_out = tq.quant_model(xt[CALIB:]).numpy()
        tq.quant_model(xt[CALIB:CALIB + 1])
    k_out = np.asarray(kq.quant_model(x[CALIB:]))
    kq.quant_model(x[CALIB:CALIB + 1])
    tq.export_xmodel(str(tdir), deploy_check=True)
    kq.export_xmodel(str(kdir), deploy_check=True)
    return tq, kq, tdir, kdir, t_out, k_out, node_map(tq.graph, kq.graph)


def test_same_graph_and_parameters(both):
    """Same ops, attrs, shapes and parameter names; the same float weights (BatchNorm folded,
    CLE applied) and, once quantized, the same biases. The corrected float biases themselves
    agree to float32 rounding only: bias correction's float reference pass runs on float data,
    where PyTorch's float32 convolution and the NumPy kernels add in different orders."""
    tq, kq, *_, names = both
    t_params = [t.name for n in tq.graph.topological_order() for t in n.params.values()]
    k_params = [t.name for n in kq.graph.topological_order() for t in n.params.values()]
    assert tq.graph.name == kq.graph.name and t_params == k_params
    t_export, k_export = tq.export_graph(), kq.export_graph()
    for a, b in zip(tq.graph.topological_order(), kq.graph.topological_order()):
        assert a.attrs == b.attrs and tq.graph.tensor(a.outputs[0]).shape == kq.graph.tensor(b.outputs[0]).shape
        for role, t in a.params.items():
            if role == "bias":
                np.testing.assert_allclose(t.data, b.params[role].data, rtol=1e-5, atol=1e-7)
                assert np.array_equal(t_export.node(a.name).params[role].data,
                                      k_export.node(b.name).params[role].data), (a.name, role)
            else:
                assert np.array_equal(t.data, b.params[role].data), (a.name, role)


def test_quant_info_fix_positions_are_identical(both):
    _, _, tdir, kdir, _, _, names = both
    t_info, k_info = read_quant_info(tdir / "quant_info.json"), read_quant_info(kdir / "quant_info.json")
    for section in ("param", "output", "input"):
        assert {rename(k, names): v for k, v in getattr(t_info, section).items()} == getattr(k_info, section)
    assert len(k_info.param) >= 4 and len(k_info.output) >= 4


def test_quant_model_outputs_are_array_equal(both):
    *_, t_out, k_out, _ = both
    assert t_out.dtype == k_out.dtype == np.float32 and t_out.shape == k_out.shape
    assert np.array_equal(t_out, k_out)


def test_xmodels_are_byte_identical_up_to_node_names(both):
    tq, kq, tdir, kdir, _, _, names = both
    t_bytes = (tdir / f"{tq.graph.name}_int.xmodel").read_bytes()
    k_bytes = (kdir / f"{kq.graph.name}_int.xmodel").read_bytes()
    back = {b: a for a, b in names.items()}
    # the Keras export graph with the torch node names writes the torch file byte for byte
    assert xgraph_to_bytes(build_cnn_xgraph(renamed_graph(kq.export_graph(), back))) == t_bytes
    if all(a == b for a, b in names.items()):
        assert k_bytes == t_bytes


def test_deploy_check_dumps_are_identical(both):
    _, _, tdir, kdir, _, _, names = both
    t_files, k_files = _files(tdir / "deploy_check_data_int"), _files(kdir / "deploy_check_data_int")
    assert sorted(rename(n, names) for n in t_files) == sorted(k_files)
    assert len(k_files) > 10
    for name, path in t_files.items():
        other = k_files[rename(name, names)]
        if name.endswith(".txt"):
            assert rename(path.read_text(), names) == other.read_text(), name
        else:
            assert path.read_bytes() == other.read_bytes(), name
