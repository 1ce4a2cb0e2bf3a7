"""Mixed bit widths in the recurrent flow (`quant_config_file` with lstm=True): the C++ loops
against the independent step-by-step reference on mixed configs (calibration fix positions and
test-mode outputs, bit for bit), every written file carrying the per-tensor widths, the
catalogued config errors, and the report's suggestion passed back as a config recovering the
accuracy that plain 8 bits lose on a model trained here on real data (sklearn digits)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from helpers import reference_lstm as ref
from helpers.cell_widths import assert_recorded_widths, widths_by_class
from helpers.lstm_cells import cells_weights as _cells_weights
from helpers.lstm_cells import quant_info_fixes as _quant_info_fixes
from helpers.rnn_models import Tagger
from nndct_shared.deploy_check import dump_file_stem
from nndct_shared.deploy_diff import read_codes
from nndct_shared.lstm.naming import LSTM_CELL
from nndct_shared.messages import NndctError
from nndct_shared.report.recurrent import recurrent_cell
from nndct_shared.report.recurrent_config import check_recurrent_config
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")
CELL_NAMES = [f"EncoderRnn_StandardLstmCell_layer_{k // 2}_{('forward', 'backward')[k % 2]}" for k in range(4)]

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
        {"layer_type": None, "layer_name": f"{CELL_NAMES[0]}::c_next", "quantizable_data_type": ["activation"],
         "overall_quantize_config": {"bit_width": 11}},
    ],
}


def _expected_widths(cell_index: int) -> dict[str, int]:
    """MIXED resolved by hand for cell `cell_index` (layer-major, forward then backward)."""
    last = {"hidden_state": 9, "input": 9} if cell_index == 3 else {}
    widths = widths_by_class(LSTM_CELL, {"weights": 8, "bias": 10, "product": 12, "sum": 12, "nonlinearity": 8},
                             **last)
    if cell_index == 0:
        widths["c_next"] = 11
    return widths


def _reference(lstm, x, fixes_or_none, widths):
    """Calibration (fixes_or_none None) or test mode of the reference, cell by cell."""
    cells = _cells_weights(lstm)
    layer_in, aligned = x, []
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(2):
            k = layer * 2 + d
            w_ih, w_hh, b, reverse = cells[k]
            if fixes_or_none is None:
                cal = ref.CalibReference(w_ih, w_hh, b, widths[k], _diffs)
                outs.append(cal.run(layer_in, reverse=reverse))
                aligned.append(cal.aligned())
                continue
            o = np.zeros(layer_in.shape[:2] + (w_hh.shape[1],))
            for n in range(len(layer_in)):
                steps = ref.test_sequence(layer_in[n], w_ih, w_hh, b, fixes_or_none[k], widths[k], reverse=reverse)
                positions = range(len(steps) - 1, -1, -1) if reverse else range(len(steps))
                for pos, s in zip(positions, steps):
                    o[n, pos] = s["h_next"]
            outs.append(o)
        layer_in = np.concatenate(outs, axis=2)
    return aligned if fixes_or_none is None else layer_in


def _diffs(*args, **kwargs):
    from nndct_shared import kernels

    return kernels.diffs_fix_pos(*args, **kwargs)


def test_mixed_config_matches_the_reference_bit_for_bit_and_every_file_carries_the_widths(tmp_path):
    torch.manual_seed(3)
    model = Tagger(hidden=40).eval()
    tokens = torch.randint(0, 50, (3, 9))
    config = tmp_path / "widths.json"
    config.write_text(json.dumps(MIXED))
    calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU,
                            quant_config_file=str(config))
    calib.quant_model(tokens)
    calib.export_quant_config()
    widths = [_expected_widths(k) for k in range(4)]
    x = model.emb(tokens).detach().double().numpy()
    expected = _reference(model.encoder.rnn, x, None, widths)
    assert _quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES) == [
        (list(n), list(a), list(b), list(c)) for n, a, b, c in expected]
    assert_recorded_widths(tmp_path / "quant_info.json", CELL_NAMES, widths, LSTM_CELL)
    test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU,
                           quant_config_file=str(config))
    out, _ = test.quant_model.encoder.rnn(model.emb(tokens))
    want = _reference(model.encoder.rnn, x, expected, widths)
    np.testing.assert_array_equal(out.detach().double().numpy(), want)
    assert _reference(model.encoder.rnn, x, None, [16] * 4) != expected  # the widths matter
    paths = test.export_xmodel(str(tmp_path), deploy_check=True)
    xgraph = read_xmodel(next(p for p in paths if str(p).endswith(f"{CELL_NAMES[3]}_int.xmodel")))
    fix_bits = {op.name: op.attrs["bit_width"] for op in xgraph if op.type == "fix"}
    assert sorted(set(fix_bits.values())) == sorted(set(widths[3].values()))
    frames = sorted((tmp_path / "deploy_check_data_int" / dump_file_stem(CELL_NAMES[3])).iterdir())
    assert frames
    saturating = set()
    for frame in frames:  # every code within its tensor's width; some node reaches its own limit
        for name, w in widths[3].items():
            codes = read_codes(frame, dump_file_stem(f"{CELL_NAMES[3]}::{name}"), None, frame)
            if codes is None:
                continue
            assert codes.min() >= -2 ** (w - 1) and codes.max() <= 2 ** (w - 1) - 1, (frame.name, name, w)
            if w < 16 and (codes.max() == 2 ** (w - 1) - 1 or codes.min() == -2 ** (w - 1)):
                saturating.add(name)
    assert saturating  # the narrow limits are reached, so the check above is not vacuous


@pytest.mark.parametrize("rnn", [nn.LSTM, nn.GRU])
def test_no_config_and_a_config_of_the_flow_settings_are_the_reference(rnn, tmp_path):
    torch.manual_seed(4)
    model = Tagger(hidden=20, layers=1, bidirectional=False, rnn=rnn).eval()
    tokens = torch.randint(0, 50, (2, 7))
    files = []
    for name, config in (("plain", None), ("same", {"overall_quantize_config": {"bit_width": 8},
                                                    "rnn_quantize_config": [{"bit_width": 8}]})):
        path = None
        if config is not None:
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(config))
        q = torch_quantizer("calib", model, bitwidth=8, lstm=True, output_dir=str(tmp_path / name), device=CPU,
                            quant_config_file=None if path is None else str(path))
        q.quant_model(tokens)
        files.append(q.export_quant_config().read_text())
    assert files[0] == files[1]


@pytest.mark.parametrize("config, msg_id, words", [
    ({"rnn_quantize_config": [{"node_class": ["gates"], "bit_width": 8}]}, "RNN_WIDTH_CLASS", "gates"),
    ({"rnn_quantize_config": [{"node_class": ["cell_state"], "bit_width": 17}]}, "RNN_WIDTH_RANGE", "17"),
    ({"tensor_quantize_config": {"weights": {"bit_width": 1}}}, "RNN_WIDTH_RANGE", "[2, 16]"),
    ({"rnn_quantize_config": [{"layer": 5, "bit_width": 8}]}, "RNN_WIDTH_NO_CELL", "rnn_quantize_config[0]"),
    ({"rnn_quantize_config": [{"module": "decoder", "bit_width": 8}]}, "RNN_WIDTH_NO_CELL", "cell"),
    ({"layer_quantize_config": [{"layer_name": f"{CELL_NAMES[0]}::no_such_node",
                                 "quantizable_data_type": ["activation"],
                                 "overall_quantize_config": {"bit_width": 8}}]}, "RNN_WIDTH_NO_CELL", "no_such_node"),
    ({"overall_quantize_config": {"bit_width": 16, "round_mode": "half_up"}}, "RECURRENT_CONFIG_INVALID", "round_mode"),
    ({"rnn_quantize_config": [{"nodes": ["c_next"], "bit_width": 8}]}, "RECURRENT_CONFIG_INVALID", "nodes"),
])
def test_config_errors_are_catalogued(config, msg_id, words, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    with pytest.raises(NndctError) as info:
        torch_quantizer("calib", Tagger(hidden=8), bitwidth=16, lstm=True, output_dir=str(tmp_path / "out"),
                        device=CPU, quant_config_file=str(path))
    assert info.value.msg_id == f"QUANTIZER_TORCH_{msg_id}"
    assert words in str(info.value)


def test_test_mode_with_other_widths_than_calibration_is_refused(tmp_path):
    model = Tagger(hidden=8, layers=1, bidirectional=False).eval()
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"rnn_quantize_config": [{"node_class": "cell_state", "bit_width": 12}]}))
    q = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU,
                        quant_config_file=str(config))
    q.quant_model(torch.randint(0, 50, (2, 5)))
    q.export_quant_config()
    with pytest.raises(NndctError) as info:
        torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    assert info.value.msg_id == "QUANTIZER_TORCH_RNN_WIDTH_MISMATCH" and "input_2" in str(info.value)


# --- the report's suggestion recovers the accuracy plain 8 bits lose ------------------------------------


class DigitRows(nn.Module):
    """sklearn digits read row by row (8 steps of 8 pixels) by an LSTM, classified from its last output."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 24, batch_first=True)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


@pytest.fixture(scope="module")
def digits_model():
    torch.manual_seed(0)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1300], order[1300:]
    model = DigitRows()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(digits.target[train]).long()
    for _ in range(15):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()
    model.eval()
    return model, xt[:300], torch.from_numpy(x[test]), torch.from_numpy(digits.target[test]).long()


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def _quantized_accuracy(model, calib_x, x, y, out, config=None) -> float:
    q = torch_quantizer("calib", model, bitwidth=8, lstm=True, output_dir=str(out), device=CPU,
                        quant_config_file=config)
    with torch.no_grad():
        q.quant_model(calib_x)
    q.export_quant_config()
    t = torch_quantizer("test", model, bitwidth=8, lstm=True, output_dir=str(out), device=CPU,
                        quant_config_file=config)
    return _accuracy(t.quant_model, x, y)


def test_the_reports_suggestion_recovers_the_accuracy_that_8_bits_lose(digits_model, tmp_path):
    model, calib_x, x, y = digits_model
    float_acc = _accuracy(model, x, y)
    plain = _quantized_accuracy(model, calib_x, x, y, tmp_path / "plain")
    assert float_acc - plain > 2.0, (float_acc, plain)  # plain 8 bits lose more than 2 points
    q = torch_quantizer("calib", model, bitwidth=8, lstm=True, output_dir=str(tmp_path / "rep"), device=CPU)
    with torch.no_grad():
        q.quant_model(calib_x)
    target_drop = 1.0
    result = q.report(calib_x[:150], eval_fn=lambda m: _accuracy(m, x, y), max_metric_drop=target_drop)
    keep = result.data["suggestion"]["keep"]
    assert result.data["suggestion"]["reached"] and 0 < len(keep) < 36
    mixed = _quantized_accuracy(model, calib_x, x, y, tmp_path / "mixed", str(result.config))
    qi = json.loads((tmp_path / "mixed" / "quant_info.json").read_text())
    kept = {name: (qi["output"] | qi["param"])[name][0] for name in keep}
    assert set(kept.values()) == {16}
    assert float_acc - mixed <= target_drop, (float_acc, plain, mixed, keep)  # within the report's target
    print(f"float {float_acc:.2f}%, plain 8-bit {plain:.2f}%, suggestion ({len(keep)} tensors at 16 bits: "
          f"{keep}) {mixed:.2f}%")


def test_a_suggestion_on_a_mixed_width_model_keeps_the_users_widths(digits_model, tmp_path):
    """The report of a model quantized with a mixed config: its suggestion passes the schema check
    (the cells' tensors have different widths), writes the user's rules back plus the tensors it
    keeps at 16 bits, and the flow run with it gives every other tensor the user's width."""
    model, calib_x, x, y = digits_model
    graph = "Lstm_StandardLstmCell_layer_0_forward"
    user = {"tensor_quantize_config": {"bias": {"bit_width": 12}},
            "rnn_quantize_config": [{"module": "lstm", "node_class": ["nonlinearity"], "bit_width": 10}],
            "layer_quantize_config": [{"layer_type": None, "layer_name": f"{graph}::c_next",
                                       "quantizable_data_type": ["activation"],
                                       "overall_quantize_config": {"bit_width": 12}}]}
    user_path = tmp_path / "user.json"
    user_path.write_text(json.dumps(user))
    q = torch_quantizer("calib", model, bitwidth=8, lstm=True, output_dir=str(tmp_path / "rep"), device=CPU,
                        quant_config_file=str(user_path))
    with torch.no_grad():
        q.quant_model(calib_x)
    user_widths = {k: v[0] for section in ("param", "output")
                   for k, v in json.loads(q.export_quant_config().read_text())[section].items()}
    assert sorted(set(user_widths.values())) == [8, 10, 12]
    result = q.report(calib_x[:150], eval_fn=lambda m: _accuracy(m, x, y), max_metric_drop=1.0)
    keep = result.data["suggestion"]["keep"]
    assert result.data["suggestion"]["reached"] and keep
    parsed = check_recurrent_config(result.config, recurrent_cell(q.session.cells[0]).tensors())
    suggested = json.loads(result.config.read_text())
    assert suggested["rnn_quantize_config"] == user["rnn_quantize_config"]
    assert suggested["tensor_quantize_config"]["bias"]["bit_width"] == 12
    assert [e.layer_name for e in parsed.layer_quantize_config][-len(keep):] == keep  # the suggestion last
    out = tmp_path / "suggested"
    accuracy = _quantized_accuracy(model, calib_x, x, y, out, str(result.config))
    qi = json.loads((out / "quant_info.json").read_text())
    widths = {k: v[0] for section in ("param", "output") for k, v in qi[section].items()}
    assert widths == {name: 16 if name in keep else w for name, w in user_widths.items()}
    assert _accuracy(model, x, y) - accuracy <= 1.0
