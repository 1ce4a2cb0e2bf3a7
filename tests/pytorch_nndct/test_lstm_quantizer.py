"""torch_quantizer(lstm=True) end to end, checked against the independent step-by-step reference
in tests/helpers/reference_lstm.py (calibration fix positions and test-mode integer codes)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers import reference_lstm as ref
from helpers.lstm_cells import cells_weights as _cells_weights
from helpers.lstm_cells import quant_info_fixes as _quant_info_fixes
from helpers.rnn_models import Tagger
from nndct_shared import kernels
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")


def _reference_calibration(lstm: nn.LSTM, x: np.ndarray, bw: int):
    """Runs the reference calibration layer by layer; returns the aligned positions per cell."""
    cells = _cells_weights(lstm)
    dirs = 2 if lstm.bidirectional else 1
    layer_in, aligned = x, []
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(dirs):
            w_ih, w_hh, b, reverse = cells[layer * dirs + d]
            cal = ref.CalibReference(w_ih, w_hh, b, bw, kernels.diffs_fix_pos)
            outs.append(cal.run(layer_in, reverse=reverse))
            aligned.append(cal.aligned())
        layer_in = np.concatenate(outs, axis=2)
    return aligned


def _reference_test(lstm: nn.LSTM, x: np.ndarray, fixes, bw: int, lengths=None):
    """Test-mode reference over sequences, layer by layer; returns out [B, T, D*H]."""
    cells = _cells_weights(lstm)
    dirs = 2 if lstm.bidirectional else 1
    B, T, _ = x.shape
    lengths = [T] * B if lengths is None else list(lengths)
    layer_in = x
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(dirs):
            w_ih, w_hh, b, reverse = cells[layer * dirs + d]
            H = w_hh.shape[1]
            o = np.zeros((B, T, H))
            for n in range(B):
                L = lengths[n]
                steps = ref.test_sequence(layer_in[n, :L], w_ih, w_hh, b, fixes[layer * dirs + d], bw, reverse=reverse)
                positions = range(L - 1, -1, -1) if reverse else range(L)
                for pos, s in zip(positions, steps):
                    o[n, pos] = s["h_next"]
            outs.append(o)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in


def _quantize(model, tokens, tmp_path, bw=16):
    calib = torch_quantizer("calib", model, bitwidth=bw, lstm=True, output_dir=str(tmp_path), device=CPU)
    calib.quant_model(tokens)
    calib.export_quant_config()
    test = torch_quantizer("test", model, bitwidth=bw, lstm=True, output_dir=str(tmp_path), device=CPU)
    return calib, test


CELL_NAMES = ["EncoderRnn_StandardLstmCell_layer_0_forward", "EncoderRnn_StandardLstmCell_layer_0_backward",
              "EncoderRnn_StandardLstmCell_layer_1_forward", "EncoderRnn_StandardLstmCell_layer_1_backward"]


@pytest.mark.parametrize("hidden", [100, 256])
def test_bidirectional_two_layer_lstm_matches_reference(hidden, tmp_path):
    torch.manual_seed(hidden)
    model = Tagger(hidden=hidden).eval()
    tokens = torch.randint(0, 50, (3, 9))
    _, test = _quantize(model, tokens, tmp_path)
    x = model.emb(tokens).detach().double().numpy()
    # calibration: every cell's aligned fix positions equal the reference's
    expected = _reference_calibration(model.encoder.rnn, x, 16)
    assert _quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES) == [
        (list(n), list(a), list(b), list(c)) for n, a, b, c in expected]
    # test mode: outputs are exactly the reference's integer datapath
    out, _ = test.quant_model.encoder.rnn(model.emb(tokens))
    want = _reference_test(model.encoder.rnn, x, expected, 16)
    np.testing.assert_array_equal(out.detach().double().numpy(), want)


def test_quantized_model_stays_close_to_float(tmp_path):
    torch.manual_seed(1)
    model = Tagger(hidden=64).eval()
    tokens = torch.randint(0, 50, (16, 12))
    _, test = _quantize(model, tokens, tmp_path)
    with torch.no_grad():
        err = (test.quant_model(tokens) - model(tokens)).abs().max().item()
    assert 0 < err < 0.05


def test_packed_sequences_equal_per_sequence_runs(tmp_path):
    torch.manual_seed(2)
    model = Tagger(hidden=32, layers=2).eval()
    tokens = torch.randint(0, 50, (4, 10))
    _, test = _quantize(model, tokens, tmp_path)
    qlstm = test.quant_model.encoder.rnn
    x = model.emb(tokens).detach()
    lengths = torch.tensor([10, 7, 3, 5])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, (h_p, c_p) = qlstm(packed)
    out_p, out_len = pad_packed_sequence(out_p, batch_first=True)
    assert out_len.tolist() == lengths.tolist()
    for n, L in enumerate(lengths.tolist()):
        out_1, (h_1, c_1) = qlstm(x[n:n + 1, :L])
        torch.testing.assert_close(out_p[n:n + 1, :L], out_1, rtol=0, atol=0)
        assert not out_p[n, L:].any()
        torch.testing.assert_close(h_p[:, n], h_1[:, 0], rtol=0, atol=0)
        torch.testing.assert_close(c_p[:, n], c_1[:, 0], rtol=0, atol=0)


def test_batch_first_false_and_initial_states(tmp_path):
    torch.manual_seed(3)
    model = Tagger(hidden=16, layers=1, bidirectional=False, batch_first=False).eval()
    tokens = torch.randint(0, 50, (2, 6))
    _, test = _quantize(model, tokens, tmp_path)
    qlstm = test.quant_model.encoder.rnn
    x = model.emb(tokens).detach().transpose(0, 1)  # [T, B, I]
    h0 = torch.randn(1, 2, 16) * 0.5
    c0 = torch.randn(1, 2, 16) * 0.5
    out, (h, c) = qlstm(x, (h0, c0))
    assert out.shape == (6, 2, 16) and h.shape == (1, 2, 16)
    fixes = _quant_info_fixes(tmp_path / "quant_info.json", ["EncoderRnn_StandardLstmCell_layer_0_forward"])
    w_ih, w_hh, b, _ = _cells_weights(model.encoder.rnn)[0]
    for n in range(2):
        steps = ref.test_sequence(x[:, n].double().numpy(), w_ih, w_hh, b, fixes[0], 16,
                                  h0=h0[0, n].double().numpy(), c0=c0[0, n].double().numpy())
        np.testing.assert_array_equal(out[:, n].double().numpy(), np.stack([s["h_next"] for s in steps]))
        np.testing.assert_array_equal(c[0, n].double().numpy(), steps[-1]["c_next"])
    # unbatched input gives the batch-of-one result
    out_u, (h_u, _) = qlstm(x[:, 0], (h0[:, 0], c0[:, 0]))
    torch.testing.assert_close(out_u, out[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(h_u, h[:, 0], rtol=0, atol=0)


@pytest.mark.parametrize("bw", [8, 16])
def test_bias_free_lstm_and_bit_widths(bw, tmp_path):
    torch.manual_seed(4)
    model = Tagger(hidden=20, layers=1, bidirectional=False, bias=False).eval()
    tokens = torch.randint(0, 50, (3, 7))
    _, test = _quantize(model, tokens, tmp_path, bw=bw)
    qi = json.loads((tmp_path / "quant_info.json").read_text())
    assert {v[0] for v in qi["output"].values()} == {bw}
    x = model.emb(tokens).detach().double().numpy()
    expected = _reference_calibration(model.encoder.rnn, x, bw)
    fixes = _quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES[:1])
    assert fixes == [(list(n), list(a), list(b), list(c)) for n, a, b, c in expected]
    out, _ = test.quant_model.encoder.rnn(model.emb(tokens))
    np.testing.assert_array_equal(out.detach().double().numpy(), _reference_test(model.encoder.rnn, x, fixes, bw))


def test_every_lstm_of_a_model_is_replaced_and_named_by_path(tmp_path):
    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Module()
            self.encoder.rnn1 = nn.LSTM(16, 32)
            self.decoder = nn.Module()
            self.decoder.rnn1 = nn.LSTM(16, 32)

        def forward(self, x):
            return self.decoder.rnn1(self.encoder.rnn1(x)[0][..., :16])[0]

    model = Seq2Seq().eval()
    calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    calib.quant_model(torch.randn(5, 2, 16))
    calib.export_quant_config()
    assert isinstance(model.encoder.rnn1, nn.LSTM), "the user's float model is left untouched"
    qi = json.loads((tmp_path / "quant_info.json").read_text())
    graphs = sorted({k.split("::")[0] for k in qi["output"]})
    assert graphs == ["DecoderRnn1_StandardLstmCell_layer_0_forward", "EncoderRnn1_StandardLstmCell_layer_0_forward"]
    for g in graphs:
        assert (tmp_path / f"{g}.py").is_file()
