"""The Keras flow follows the session's node names: the neutral session names nodes its own way
(the reference's `<Model>::nndct_<op>_<index>`, computed from the graph, also when it is given a
capture already renamed another way); the Keras side maps its references by position in the
topological order and computes the same bits; files carry the session's names."""
from __future__ import annotations

import numpy as np

from nndct_shared.cnn.capture import CapturedModel
from nndct_shared.cnn.session import CnnQuantSession
from nndct_shared.deploy_check import dump_file_stem
from test_keras_cnn_cross_framework import renamed_graph
from test_keras_cnn_mixed import mixed_model
from tf_nndct.cnn import quantizer as keras_cnn_quantizer
from tf_nndct.quantization.api import tf_quantizer
from twins import read_quant_info


def nndct_named(captured: CapturedModel) -> CapturedModel:
    graph = captured.graph
    names = {n.name: f"{graph.name}::nndct_{n.op_type}_{i}" for i, n in enumerate(graph.topological_order())}
    return CapturedModel(renamed_graph(graph, names), {names[k]: v for k, v in captured.layer_types.items()},
                         {names[n] for n in captured.quantized}, {names[n] for n in captured.quant_inputs},
                         {names[k]: v for k, v in captured.sources.items()}, [names[n] for n in captured.output_names])


class RenamingSession(CnnQuantSession):
    def __init__(self, captured, *args, **kwargs):
        super().__init__(nndct_named(captured), *args, **kwargs)


def _run(out, calib, test) -> np.ndarray:
    quantizer = tf_quantizer(mixed_model(), None, "calib", str(out), cnn=True)
    for start in range(0, len(calib), 20):
        quantizer.quant_model(calib[start:start + 20])
    quantizer.export_quant_config()
    quantizer = tf_quantizer(mixed_model(), None, "test", str(out), cnn=True)
    result = np.asarray(quantizer.quant_model(test))
    quantizer.quant_model(test[:1])
    quantizer.export_xmodel(deploy_check=True)
    return result


def test_a_session_that_renames_nodes_gives_the_same_bits(vowels, tmp_path, monkeypatch):
    calib, test = vowels[0][:40], vowels[1][:10]
    plain = _run(tmp_path / "plain", calib, test)
    monkeypatch.setattr(keras_cnn_quantizer, "CnnQuantSession", RenamingSession)
    renamed = _run(tmp_path / "renamed", calib, test)
    assert np.array_equal(plain, renamed)
    a, b = read_quant_info(tmp_path / "plain" / "quant_info.json"), read_quant_info(tmp_path / "renamed" / "quant_info.json")
    # the session names nodes as the reference 3.x does, whatever names the capture it got had
    assert list(b.output) == list(a.output)
    assert list(a.output.values()) == list(b.output.values()) and a.param == b.param
    last = dump_file_stem(list(b.output)[-1])
    assert (tmp_path / "renamed" / "deploy_check_data_int" / "Mixed" / f"{last}_fix.bin").is_file()
