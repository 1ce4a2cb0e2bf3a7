"""torch_quantizer(lstm=True) on nn.GRU end to end, checked against the independent step-by-step
reference in tests/helpers/reference_gru.py (calibration fix positions and test-mode outputs),
and what the flow writes for GRUs (alone and next to LSTMs)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers.gru_cells import cell_blocks as _cell_blocks
from helpers.gru_cells import quant_info_fixes as _quant_info_fixes
from helpers.gru_cells import reference_calibration as _reference_calibration
from helpers.gru_cells import reference_test as _reference_test
from helpers.rnn_models import Tagger
from nndct_shared.messages import NndctError
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer
from pytorch_nndct.nn.quant_gru import QuantGRU
from pytorch_nndct.nn.quant_lstm import QuantLSTM

CPU = torch.device("cpu")


def gru_tagger(**kwargs) -> nn.Module:
    """Embedding(50, 12) -> nn.GRU at `encoder.rnn` -> Linear."""
    return Tagger(rnn=nn.GRU, embed=12, **{"hidden": 24, **kwargs})


def _quantize(model, inputs, tmp_path, bw=16):
    calib = torch_quantizer("calib", model, bitwidth=bw, lstm=True, output_dir=str(tmp_path), device=CPU)
    calib.quant_model(inputs)
    calib.export_quant_config()
    return torch_quantizer("test", model, bitwidth=bw, lstm=True, output_dir=str(tmp_path), device=CPU)


CELL_NAMES = ["EncoderRnn_StandardGruCell_layer_0_forward", "EncoderRnn_StandardGruCell_layer_0_backward",
              "EncoderRnn_StandardGruCell_layer_1_forward", "EncoderRnn_StandardGruCell_layer_1_backward"]


@pytest.mark.parametrize("hidden", [24, 130])
def test_bidirectional_two_layer_gru_matches_reference(hidden, tmp_path):
    torch.manual_seed(hidden)
    model = gru_tagger(hidden=hidden).eval()
    tokens = torch.randint(0, 50, (3, 9))
    test = _quantize(model, tokens, tmp_path)
    assert isinstance(test.quant_model.encoder.rnn, QuantGRU)
    x = model.emb(tokens).detach().double().numpy()
    expected = _reference_calibration(model.encoder.rnn, x, 16)
    fixes = _quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES)
    assert fixes == [(list(n), p) for n, p in expected]
    out, h_n = test.quant_model.encoder.rnn(model.emb(tokens))
    want, want_h = _reference_test(model.encoder.rnn, x, fixes, 16)
    np.testing.assert_array_equal(out.detach().double().numpy(), want)
    np.testing.assert_array_equal(h_n.detach().double().numpy(), want_h)


@pytest.mark.parametrize("bw", [8, 16])
def test_bias_free_gru_and_bit_widths(bw, tmp_path):
    torch.manual_seed(4)
    model = gru_tagger(hidden=20, layers=1, bidirectional=False, bias=False).eval()
    tokens = torch.randint(0, 50, (3, 7))
    test = _quantize(model, tokens, tmp_path, bw=bw)
    qi = json.loads((tmp_path / "quant_info.json").read_text())
    assert {v[0] for v in qi["output"].values()} == {bw}
    assert len(qi["param"]) == 12 and len(qi["output"]) == 19
    x = model.emb(tokens).detach().double().numpy()
    expected = _reference_calibration(model.encoder.rnn, x, bw)
    fixes = _quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES[:1])
    assert fixes == [(list(n), p) for n, p in expected]
    out, _ = test.quant_model.encoder.rnn(model.emb(tokens))
    np.testing.assert_array_equal(out.detach().double().numpy(), _reference_test(model.encoder.rnn, x, fixes, bw)[0])


def test_quantized_model_stays_close_to_float(tmp_path):
    torch.manual_seed(1)
    model = gru_tagger(hidden=64).eval()
    tokens = torch.randint(0, 50, (16, 12))
    test = _quantize(model, tokens, tmp_path)
    with torch.no_grad():
        err = (test.quant_model(tokens) - model(tokens)).abs().max().item()
    assert 0 < err < 0.05


def test_packed_sequences_equal_per_sequence_runs(tmp_path):
    torch.manual_seed(2)
    model = gru_tagger(hidden=32, layers=2).eval()
    tokens = torch.randint(0, 50, (4, 10))
    test = _quantize(model, tokens, tmp_path)
    qgru = test.quant_model.encoder.rnn
    x = model.emb(tokens).detach()
    lengths = torch.tensor([10, 7, 3, 5])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, h_p = qgru(packed)
    out_p, out_len = pad_packed_sequence(out_p, batch_first=True)
    assert out_len.tolist() == lengths.tolist()
    # nn.GRU's own packed output has the same structure
    float_out, float_h = model.encoder.rnn(packed)
    assert pad_packed_sequence(float_out, batch_first=True)[0].shape == out_p.shape and float_h.shape == h_p.shape
    for n, L in enumerate(lengths.tolist()):
        out_1, h_1 = qgru(x[n:n + 1, :L])
        torch.testing.assert_close(out_p[n:n + 1, :L], out_1, rtol=0, atol=0)
        assert not out_p[n, L:].any()
        torch.testing.assert_close(h_p[:, n], h_1[:, 0], rtol=0, atol=0)


def test_batch_first_false_initial_state_and_unbatched_input(tmp_path):
    torch.manual_seed(3)
    model = gru_tagger(hidden=16, layers=2, bidirectional=True, batch_first=False).eval()
    tokens = torch.randint(0, 50, (2, 6))
    test = _quantize(model, tokens, tmp_path)
    qgru = test.quant_model.encoder.rnn
    x = model.emb(tokens).detach().transpose(0, 1)  # [T, B, I]
    h0 = torch.tanh(torch.randn(4, 2, 16))
    out, h = qgru(x, h0)
    float_out, float_h = model.encoder.rnn(x, h0)
    assert out.shape == float_out.shape == (6, 2, 32) and h.shape == float_h.shape == (4, 2, 16)
    fixes = _quant_info_fixes(tmp_path / "quant_info.json", CELL_NAMES)
    want, want_h = _reference_test(model.encoder.rnn, x.transpose(0, 1).double().numpy(), fixes, 16,
                                   h0=h0.double().numpy())
    np.testing.assert_array_equal(out.transpose(0, 1).double().numpy(), want)
    np.testing.assert_array_equal(h.double().numpy(), want_h)
    out_u, h_u = qgru(x[:, 0], h0[:, 0])  # unbatched input gives the batch-of-one result
    torch.testing.assert_close(out_u, out[:, 0], rtol=0, atol=0)
    torch.testing.assert_close(h_u, h[:, 0], rtol=0, atol=0)


class Mixed(nn.Module):
    """An LSTM feeding a GRU feeding an LSTM: every cell kind at its own attribute path."""

    def __init__(self):
        super().__init__()
        self.front = nn.LSTM(12, 16, batch_first=True)
        self.middle = nn.Module()
        self.middle.gru = nn.GRU(16, 8, batch_first=True, bidirectional=True)
        self.back = nn.LSTM(16, 4, batch_first=True)

    def forward(self, x):
        return self.back(self.middle.gru(self.front(x)[0])[0])[0]


def test_a_model_mixing_lstms_and_grus_writes_every_file(tmp_path):
    torch.manual_seed(5)
    model = Mixed().eval()
    x = torch.randn(3, 5, 12)
    test = _quantize(model, x, tmp_path)
    quant = test.quant_model
    assert [type(m) for m in (quant.front, quant.middle.gru, quant.back)] == [QuantLSTM, QuantGRU, QuantLSTM]
    assert isinstance(model.middle.gru, nn.GRU), "the user's float model is left untouched"
    with torch.no_grad():
        assert (quant(x) - model(x)).abs().max() < 0.02
    quant(x)
    test.export_xmodel(str(tmp_path), deploy_check=True)
    graphs = {"Front_StandardLstmCell_layer_0_forward": 72, "Back_StandardLstmCell_layer_0_forward": 72,
              "MiddleGru_StandardGruCell_layer_0_forward": 62, "MiddleGru_StandardGruCell_layer_0_backward": 62}
    qi = json.loads((tmp_path / "quant_info.json").read_text())
    assert sorted({k.split("::")[0] for k in qi["output"]}) == sorted(graphs)
    for graph, n_ops in graphs.items():
        assert (tmp_path / f"{graph}.py").is_file()
        xg = read_xmodel(tmp_path / "xmodel" / f"{graph}_int.xmodel")
        assert len(xg) == n_ops
        frames = sorted((tmp_path / "deploy_check_data_int" / graph).iterdir())
        assert [f.name for f in frames] == [f"frame_{t}" for t in range(5)]
    gru_graph = "MiddleGru_StandardGruCell_layer_0_backward"
    xg = read_xmodel(tmp_path / "xmodel" / f"{gru_graph}_int.xmodel")
    assert xg.op_type_counts() == {"data": 2, "const": 12, "matmul": 6, "add": 4, "sub": 1, "mul": 3,
                                   "sigmoid": 2, "tanh": 1, "fix": 31}
    assert xg.attrs["direction"] == "backward" and xg.return_ops == [f"{gru_graph}__h_next_fix"]
    assert {op.fix for op in xg.ops_of_type("fix")} >= {(16, 15)}
    frame_dir = tmp_path / "deploy_check_data_int" / gru_graph
    assert len(list((frame_dir / "frame_0").iterdir())) == 2 * 19 + 1 + 2 * 12
    assert len(list((frame_dir / "frame_4").iterdir())) == 2 * 19 + 1
    # the dumps replay the first test batch's element 0: a backward cell's frame 0 is the last position
    out, _ = quant.middle.gru(quant.front(x[:1])[0])
    h0 = np.loadtxt(frame_dir / "frame_0" / f"{gru_graph}__h_next_fix.txt")
    np.testing.assert_array_equal(h0, out[0, 4, 8:].double().numpy() * 2.0 ** qi["output"][f"{gru_graph}::h_next"][1])


def test_generated_cell_module_computes_the_float_gru_step(tmp_path):
    torch.manual_seed(6)
    model = gru_tagger(hidden=8, layers=1, bidirectional=False).eval()
    torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    graph = CELL_NAMES[0]
    spec = importlib.util.spec_from_file_location("cell", tmp_path / f"{graph}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (blocks, _), = _cell_blocks(model.encoder.rnn)
    cell = getattr(module, graph)(blocks)
    x, h = torch.randn(3, 12, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    cell_t = nn.GRUCell(12, 8).double()
    gru = model.encoder.rnn
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell_t, name).copy_(getattr(gru, f"{name}_l0"))
        want = cell_t(x, h).numpy()
    np.testing.assert_allclose(cell.forward(x.numpy(), h.numpy()), want, atol=1e-12)


def _raises(msg_id, exc_type, fn, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, NndctError) and info.value.msg_id == msg_id, info.value
    return info.value


def test_bad_inputs_to_the_quantized_gru(tmp_path):
    torch.manual_seed(7)
    model = gru_tagger(hidden=8, layers=2, bidirectional=False).eval()
    calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    gru = calib.quant_model.encoder.rnn
    x = torch.randn(1, 4, 12)
    x[0, 2, 0] = float("inf")
    assert "GRU 'encoder.rnn'" in str(_raises("QUANTIZER_TORCH_CALIB_DATA_NONFINITE", ValueError, gru, x))
    _raises("QUANTIZER_TORCH_SHAPE_MISMATCH", ValueError, gru, torch.randn(1, 4, 11))
    _raises("QUANTIZER_TORCH_INITIAL_STATES", ValueError, gru, torch.randn(1, 4, 12), torch.zeros(1, 1, 8))
    bad_h0 = torch.zeros(2, 1, 8)
    bad_h0[1, 0, 3] = float("nan")
    _raises("QUANTIZER_TORCH_CALIB_DATA_NONFINITE", ValueError, gru, torch.randn(1, 4, 12), bad_h0)


def test_test_mode_refuses_a_calibration_of_the_other_cell_kind(tmp_path):
    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(12, 8)

    class Gru(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(12, 8)

    calib = torch_quantizer("calib", Lstm(), bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    calib.quant_model.rnn(torch.randn(3, 2, 12))
    calib.export_quant_config()
    err = _raises("QUANTIZER_TORCH_CALIB_RESULT_MISMATCH", ValueError, torch_quantizer, "test", Gru(),
                  bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    assert "Rnn_StandardGruCell_layer_0_forward::" in str(err)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_outputs_keep_the_input_dtype_and_values(dtype, tmp_path):
    torch.manual_seed(8)
    model = gru_tagger(hidden=8, layers=1, bidirectional=False).eval()
    tokens = torch.randint(0, 50, (2, 5))
    gru = _quantize(model, tokens, tmp_path).quant_model.encoder.rnn
    x = model.emb(tokens).detach()
    ref_out, ref_h = gru(x.to(dtype).double())  # float64 in, float64 out: the exact codes' values
    out, h = gru(x.to(dtype), torch.zeros(1, 2, 8, dtype=dtype))
    assert out.dtype == h.dtype == dtype
    torch.testing.assert_close(out, ref_out.to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(h, ref_h.to(dtype), rtol=0, atol=0)
