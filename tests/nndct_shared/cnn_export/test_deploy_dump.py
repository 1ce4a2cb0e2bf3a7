"""Deploy-check bin dumps: stems are xmodel op names, activations in the xmodel's layout, param
files byte-identical to the xmodel consts, codes = value * 2^fp, shape.txt, batch 1 only."""
from __future__ import annotations

import numpy as np
import pytest

from nndct_shared.cnn_export import build_cnn_xgraph, run_reference, write_cnn_deploy_check
from nndct_shared.cnn_export.flatten_fold import xir_value
from nndct_shared.graph import to_op_name
from nndct_shared.messages import ExportError


@pytest.mark.parametrize("net", ["lenet", "mixed", "conv1d"])
def test_dump_files(nets, net_inputs, net, tmp_path) -> None:
    graph = nets[net]
    values = run_reference(graph, {"input_0": net_inputs[net][:1]})
    out = write_cnn_deploy_check(graph, values, tmp_path)
    assert out == tmp_path / "deploy_check_data_int" / graph.name
    xgraph = build_cnn_xgraph(graph)
    files = {p.name for p in out.iterdir()}
    expected = {"shape.txt"}
    lines = []
    for node in graph.topological_order():
        stem = to_op_name(node.name)
        assert stem in xgraph
        value = xir_value(graph, node, values[node.outputs[0]])
        data = (out / f"{stem}.bin").read_bytes()
        assert data == value.astype("<f4").tobytes()
        expected.add(f"{stem}.bin")
        if node.attrs.get("fix"):
            _, fp = node.attrs["fix"]
            codes = np.frombuffer((out / f"{stem}_fix.bin").read_bytes(), dtype=np.int8)
            np.testing.assert_array_equal(codes, (value.reshape(-1) * 2.0 ** fp).astype(np.int8))
            np.testing.assert_array_equal(codes.astype(np.float32) * np.float32(2.0 ** -fp),
                                          value.reshape(-1))
            expected.add(f"{stem}_fix.bin")
        lines.append(f"{list(value.shape)}: {node.name}\n")
        for tensor in node.params.values():
            pstem = to_op_name(tensor.name)
            assert (out / f"{pstem}.bin").read_bytes() == xgraph.op(pstem).attrs["data"]
            _, fp = tensor.attrs["fix"]
            codes = np.frombuffer((out / f"{pstem}_fix.bin").read_bytes(), dtype=np.int8)
            np.testing.assert_array_equal(codes.astype(np.float32) * np.float32(2.0 ** -fp),
                                          xgraph.op(pstem).const_array().reshape(-1))
            expected |= {f"{pstem}.bin", f"{pstem}_fix.bin"}
    assert files == expected
    assert (out / "shape.txt").read_text() == "".join(lines)


def test_lenet_dump_is_nhwc(lenet_graph, net_inputs, tmp_path) -> None:
    values = run_reference(lenet_graph, {"input_0": net_inputs["lenet"][:1]})
    out = write_cnn_deploy_check(lenet_graph, values, tmp_path)
    conv = lenet_graph.nodes[1]
    text = (out / "shape.txt").read_text().splitlines()
    assert text[0] == "[1, 8, 8, 1]: input_0"
    assert text[1] == f"[1, 8, 8, 6]: {conv.name}"
    data = np.frombuffer((out / "LeNet__conv_1.bin").read_bytes(), np.float32)
    np.testing.assert_array_equal(data.reshape(1, 8, 8, 6).transpose(0, 3, 1, 2),
                                  values[conv.name])


def test_batch_must_be_one(lenet_graph, net_inputs, tmp_path) -> None:
    values = run_reference(lenet_graph, {"input_0": net_inputs["lenet"][:2]})
    with pytest.raises(ExportError, match="XMODEL_BATCHSIZE.*batch size 2"):
        write_cnn_deploy_check(lenet_graph, values, tmp_path)
    assert not (tmp_path / "deploy_check_data_int" / "LeNet").exists()
