"""The PyTorch CNN front end keeps capture, the generated module and torch tensors: its plan,
settings, calibration result and export graph are the neutral session's, and its run mode is the
one `RunMode`."""
from __future__ import annotations

import numpy as np

from nndct_shared.cnn.session import CnnQuantSession
from nndct_shared.quant_info_v3 import QuantRecord, to_json_text_v3
from nndct_shared.quant_mode import RunMode
from pytorch_nndct.apis import torch_quantizer

from quant_flow import plain_config


def test_the_quantizer_is_a_front_end_of_the_session(digits_mlp, digits, tmp_path):
    out = str(tmp_path)
    config = plain_config(tmp_path)
    calib = torch_quantizer("calib", digits_mlp, digits[0][:8], output_dir=out, device="cpu",
                            quant_config_file=config)
    assert isinstance(calib.session, CnnQuantSession)
    assert calib.quant_mode is RunMode.CALIB and calib.runtime.mode is RunMode.CALIB
    assert calib.plan is calib.session.plan and calib.settings is calib.session.settings
    assert calib.graph is calib.session.graph and calib.config is calib.session.config
    calib.quant_model(digits[0][:64])
    path = calib.export_quant_config()
    info, float_info = calib.session.quant_info(calib.runtime.calibrated())
    record = QuantRecord(info, fast_finetuned=False, bias_corrected=False, graph_md5=calib.session.graph_md5)
    assert float_info is None and path.read_text() == to_json_text_v3(record)

    test = torch_quantizer("test", digits_mlp, digits[0][:8], output_dir=out, device="cpu",
                           quant_config_file=config)
    assert test.quant_mode is RunMode.TEST
    assert test.runtime.fix_pos == test.session.read_fix_positions()
    test.quant_model(digits[0][:1])
    graph = test.export_graph()
    direct = test.session.export_graph(test.runtime.fix_pos,
                                       {n: tuple(t.shape) for n, t in test.runtime.last_outputs.items()})
    for a, b in zip(graph.topological_order(), direct.topological_order()):
        assert (a.name, a.attrs) == (b.name, b.attrs)
        for role in a.params:
            np.testing.assert_array_equal(a.params[role].data, b.params[role].data)
