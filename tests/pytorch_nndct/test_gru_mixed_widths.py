"""Mixed bit widths for GRU cells (`quant_config_file` with lstm=True on nn.GRU): the C++ loops
against the independent step-by-step reference (tests/helpers/reference_gru.py) with per-tensor
widths -- calibration fix positions, test-mode outputs and every node code of every dumped
frame, bit for bit -- and the widths in quant_info.json, the xmodels' fix ops and the dumps.
(The reset-before variant's loops are checked against the scalar loops on mixed widths in
tests/nndct_shared/gru/test_gru_loops.py and against the reference in tests/tf_nndct/test_keras_gru.py;
a config of one width giving the plain flow's file, for GRUs too, in test_lstm_mixed_widths.py.)"""
from __future__ import annotations

import json

import numpy as np
import torch

from helpers.cell_widths import assert_recorded_widths, widths_by_class
from helpers.gru_cells import quant_info_fixes, reference_calibration, reference_test
from helpers.rnn_models import Tagger
from nndct_shared.deploy_check import dump_file_stem
from nndct_shared.deploy_diff import read_codes
from nndct_shared.gru.naming import gru_definition
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")
GRU = gru_definition(True)
CELL_NAMES = [f"EncoderRnn_StandardGruCell_layer_{k // 2}_{('forward', 'backward')[k % 2]}" for k in range(4)]

MIXED = {
    "overall_quantize_config": {"bit_width": 16},
    "tensor_quantize_config": {"weights": {"bit_width": 8}, "bias": {"bit_width": 10}},
    "rnn_quantize_config": [
        {"node_class": ["product", "sum"], "bit_width": 12},
        {"node_class": "nonlinearity", "bit_width": 8},
        {"module": "encoder.rnn", "layer": 1, "direction": "backward", "node_class": ["hidden_state", "input"],
         "bit_width": 9},
    ],
    "layer_quantize_config": [
        {"layer_type": None, "layer_name": f"{CELL_NAMES[0]}::ft*input_1", "quantizable_data_type": ["activation"],
         "overall_quantize_config": {"bit_width": 7}},
    ],
}


def expected_widths(cell_index: int) -> dict[str, int]:
    """MIXED resolved by hand for cell `cell_index` (layer-major, forward then backward)."""
    last = {"hidden_state": 9, "input": 9} if cell_index == 3 else {}
    widths = widths_by_class(GRU, {"weights": 8, "bias": 10, "product": 12, "sum": 12, "nonlinearity": 8}, **last)
    if cell_index == 0:
        widths["ft*input_1"] = 7
    return widths


def gru_tagger(hidden: int) -> torch.nn.Module:
    return Tagger(rnn=torch.nn.GRU, embed=12, hidden=hidden).eval()


def test_mixed_gru_matches_the_reference_node_for_node_and_every_file_carries_the_widths(tmp_path):
    torch.manual_seed(5)
    model = gru_tagger(30)
    tokens = torch.randint(0, 50, (3, 8))
    config = tmp_path / "widths.json"
    config.write_text(json.dumps(MIXED))
    calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU,
                            quant_config_file=str(config))
    calib.quant_model(tokens)
    calib.export_quant_config()
    widths = [expected_widths(k) for k in range(4)]
    gru = model.encoder.rnn
    x = model.emb(tokens).detach().double().numpy()
    expected = reference_calibration(gru, x, widths)
    fixes = quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES)
    assert fixes == [(list(n), p) for n, p in expected]
    assert reference_calibration(gru, x, 16) != expected  # the widths matter
    assert_recorded_widths(tmp_path / "quant_info.json", CELL_NAMES, widths, GRU)

    test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU,
                           quant_config_file=str(config))
    out, h_n = test.quant_model.encoder.rnn(model.emb(tokens))
    steps = {}
    want, want_h = reference_test(gru, x, fixes, widths, steps_of=steps)
    np.testing.assert_array_equal(out.detach().double().numpy(), want)
    np.testing.assert_array_equal(h_n.detach().double().numpy(), want_h)

    paths = test.export_xmodel(str(tmp_path), deploy_check=True)
    saturating = set()
    for k, graph in enumerate(CELL_NAMES):
        xgraph = read_xmodel(next(p for p in paths if str(p).endswith(f"{dump_file_stem(graph)}_int.xmodel")))
        fix_bits = {op.name: op.attrs["bit_width"] for op in xgraph if op.type == "fix"}
        assert sorted(set(fix_bits.values())) == sorted(set(widths[k].values()))
        node_fp = dict(zip(GRU.node_names, fixes[k][0]))
        root = tmp_path / "deploy_check_data_int" / dump_file_stem(graph)
        frames = sorted(root.iterdir(), key=lambda f: int(f.name.split("_")[-1]))
        assert len(frames) == len(steps[k]) == tokens.shape[1]
        for frame, step in zip(frames, steps[k]):  # every node code of batch element 0, step by step
            compared = 0
            for name, w in widths[k].items():
                codes = read_codes(frame, dump_file_stem(f"{graph}::{name}"), None, frame)
                if codes is None:  # parameters: frame 0 only
                    continue
                assert codes.min() >= -2 ** (w - 1) and codes.max() <= 2 ** (w - 1) - 1, (frame.name, name, w)
                if w < 16 and (codes.max() == 2 ** (w - 1) - 1 or codes.min() == -2 ** (w - 1)):
                    saturating.add(name)
                if name in node_fp:
                    want_codes = np.ldexp(np.asarray(step[name]).ravel(), node_fp[name])
                    np.testing.assert_array_equal(codes, want_codes, err_msg=f"{graph} {frame.name} {name}")
                    compared += 1
            assert compared == len(GRU.node_names)
    assert saturating  # the narrow limits are reached, so the clamps are exercised
