"""What torch_quantizer(lstm=True) writes, and what it refuses to do."""
from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from nndct_shared.messages import NndctError
from nndct_shared.xmodel import read_xmodel
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")
GOLDEN_GRAPHS = ["EncoderRnn1_StandardLstmCell_layer_0_forward", "DecoderRnn1_StandardLstmCell_layer_0_forward"]


class EncoderDecoder(nn.Module):
    """The golden model's structure: `encoder.rnn1` = nn.LSTM(1, 16), `decoder.rnn1` = nn.LSTM(16, 32)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.rnn1 = nn.LSTM(1, 16, batch_first=True)
        self.decoder = nn.Module()
        self.decoder.rnn1 = nn.LSTM(16, 32, batch_first=True)

    def forward(self, x):
        h, _ = self.encoder.rnn1(x)
        y, _ = self.decoder.rnn1(h)
        return y


@pytest.fixture
def model():
    torch.manual_seed(0)
    return EncoderDecoder().eval()


def _calibrate(model, out_dir, x):
    q = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(out_dir), device=CPU)
    q.quant_model(x)
    return q.export_quant_config()


def test_reference_quant_info_loads_unchanged(model, golden_lstm_dir, tmp_path):
    shutil.copy(golden_lstm_dir / "quant_info.json", tmp_path / "quant_info.json")
    q = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    cells = [c for s in q.session.stacks for c in s.cells]
    assert [c.graph_name for c in cells] == GOLDEN_GRAPHS
    assert all(c.fix.node[15:19] == [15, 15, 15, 15] for c in cells)
    q.quant_model(torch.randn(1, 3, 1))


def test_our_quant_info_has_the_reference_keys_in_order(model, golden_lstm_dir, tmp_path):
    path = _calibrate(model, tmp_path, torch.randn(2, 6, 1))
    ours, gold = path.read_text(), (golden_lstm_dir / "quant_info.json").read_text()
    key_lines = lambda text: [line.split('":')[0] for line in text.splitlines()]  # noqa: E731
    assert key_lines(ours) == key_lines(gold)


def test_export_writes_xmodels_dumps_and_cell_modules(model, tmp_path):
    x = torch.randn(2, 5, 1)
    _calibrate(model, tmp_path, x)
    q = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    q.quant_model(x)
    q.export_xmodel(str(tmp_path), deploy_check=True)
    for graph in GOLDEN_GRAPHS:
        xg = read_xmodel(tmp_path / "xmodel" / f"{graph}_int.xmodel")
        assert len(xg) == 72
        assert xg.op_type_counts() == {"data": 3, "const": 12, "matmul": 8, "add": 5, "mul": 3, "sigmoid": 3,
                                       "tanh": 2, "fix": 36}
        frames = sorted((tmp_path / "deploy_check_data_int" / graph).iterdir())
        assert [f.name for f in frames] == [f"frame_{t}" for t in range(5)]
        assert len(list(frames[0].iterdir())) == 49 + 24 and len(list(frames[4].iterdir())) == 49
    # the deploy-check codes replay the first test batch's element 0: frame t's h_next is out[0, t]
    enc = q.quant_model.encoder.rnn1
    out, _ = enc(x[:1])
    h4 = np.loadtxt(tmp_path / "deploy_check_data_int" / GOLDEN_GRAPHS[0] / "frame_4" /
                    f"{GOLDEN_GRAPHS[0]}__h_next_fix.txt")
    np.testing.assert_array_equal(h4, out[0, 4].double().numpy() * 2.0 ** 12)


def test_generated_cell_module_computes_the_float_lstm_step(model, tmp_path):
    _calibrate(model, tmp_path, torch.randn(1, 2, 1))
    path = tmp_path / f"{GOLDEN_GRAPHS[1]}.py"
    spec = importlib.util.spec_from_file_location("cell", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lstm = model.decoder.rnn1
    w_ih, w_hh = lstm.weight_ih_l0.detach().double().numpy(), lstm.weight_hh_l0.detach().double().numpy()
    b = (lstm.bias_ih_l0.double() + lstm.bias_hh_l0.double()).detach().numpy()
    params = {}
    for k, g in enumerate("ifgo"):
        params[f"weight_i{g}"], params[f"weight_h{g}"] = w_ih[k * 32:(k + 1) * 32], w_hh[k * 32:(k + 1) * 32]
        params[f"bias_{g}"] = b[k * 32:(k + 1) * 32]
    cell = getattr(module, GOLDEN_GRAPHS[1])(params)
    x, h, c = torch.randn(3, 16), torch.randn(3, 32), torch.randn(3, 32)
    cell_t = nn.LSTMCell(16, 32).double()
    with torch.no_grad():
        cell_t.weight_ih.copy_(lstm.weight_ih_l0)
        cell_t.weight_hh.copy_(lstm.weight_hh_l0)
        cell_t.bias_ih.copy_(lstm.bias_ih_l0)
        cell_t.bias_hh.copy_(lstm.bias_hh_l0)
        h_ref, c_ref = cell_t(x.double(), (h.double(), c.double()))
    h_gen, c_gen = cell.forward(x.double().numpy(), h.double().numpy(), c.double().numpy())
    np.testing.assert_allclose(h_gen, h_ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(c_gen, c_ref.numpy(), atol=1e-12)


# ---------------------------------------------------------------------------------------- errors
def _raises(msg_id, exc_type, fn, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, NndctError) and info.value.msg_id == msg_id, info.value
    assert f"[{msg_id}]" in str(info.value)
    return info.value


def test_bad_arguments_get_catalogued_errors(model, tmp_path):
    _raises("QUANTIZER_TORCH_QUANT_MODE", ValueError, torch_quantizer, "train", model, lstm=True, output_dir=str(tmp_path))
    _raises("QUANTIZER_TORCH_MODULE_TYPE", TypeError, torch_quantizer, "calib", model.state_dict(), lstm=True)
    _raises("QUANTIZER_TORCH_NO_LSTM", RuntimeError, torch_quantizer, "calib", nn.Linear(2, 2), lstm=True,
            output_dir=str(tmp_path))
    _raises("QUANTIZER_TORCH_ILLEGAL_BITWIDTH", ValueError, torch_quantizer, "calib", model, bitwidth=20, lstm=True)
    _raises("QUANTIZER_TORCH_UNSUPPORTED_RNN", NotImplementedError, torch_quantizer, "calib",
            nn.LSTM(4, 8, proj_size=2), lstm=True, output_dir=str(tmp_path), device=CPU)
    _raises("QUANTIZER_TORCH_STATE_DICT_MISSING", FileNotFoundError, torch_quantizer, "calib", model,
            state_dict_file=str(tmp_path / "nope.pth"), lstm=True, output_dir=str(tmp_path))
    # Without lstm=True the model goes to the CNN flow, which needs example inputs to trace it.
    _raises("QUANTIZER_TORCH_CNN_NO_INPUT_ARGS", ValueError, torch_quantizer, "calib", model,
            output_dir=str(tmp_path), device=CPU)


def test_test_mode_without_or_with_foreign_calibration(model, tmp_path):
    _raises("QUANTIZER_TORCH_NO_CALIB_RESULT", FileNotFoundError, torch_quantizer, "test", model, bitwidth=16,
            lstm=True, output_dir=str(tmp_path), device=CPU)
    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(16, 32)

        def forward(self, x):
            return self.rnn(x)[0]

    other = Other().eval()
    _calibrate(other, tmp_path, torch.randn(3, 1, 16))
    err = _raises("QUANTIZER_TORCH_CALIB_RESULT_MISMATCH", ValueError, torch_quantizer, "test", model,
                  bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    assert "'DecoderRnn1_StandardLstmCell_layer_0_forward::bias_f'" in str(err)  # missing
    assert "'Rnn_StandardLstmCell_layer_0_forward::" in str(err)  # unexpected
    (tmp_path / "quant_info.json").write_text('{"param": {')
    _raises("QUANTIZER_TORCH_QUANT_INFO_CORRUPT", ValueError, torch_quantizer, "test", other, bitwidth=16,
            lstm=True, output_dir=str(tmp_path), device=CPU)


def test_exports_in_the_wrong_mode_or_before_forward(model, tmp_path):
    calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    _raises("QUANTIZER_TORCH_NO_FORWARD", RuntimeError, calib.export_quant_config)
    _raises("QUANTIZER_TORCH_EXPORT_MODE", RuntimeError, calib.export_xmodel, str(tmp_path))
    calib.quant_model(torch.randn(1, 4, 1))
    calib.export_quant_config()
    test = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    _raises("QUANTIZER_TORCH_EXPORT_MODE", RuntimeError, test.export_quant_config)
    _raises("QUANTIZER_TORCH_NO_FORWARD", RuntimeError, test.export_xmodel, str(tmp_path))
    assert not (tmp_path / "xmodel").exists()


def test_bad_inputs_to_the_quantized_lstm(model, tmp_path):
    calib = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    lstm = calib.quant_model.encoder.rnn1
    x = torch.randn(1, 4, 1)
    x[0, 2, 0] = float("nan")
    _raises("QUANTIZER_TORCH_CALIB_DATA_NONFINITE", ValueError, lstm, x)
    _raises("QUANTIZER_TORCH_SHAPE_MISMATCH", ValueError, lstm, torch.randn(1, 4, 15))
    _raises("QUANTIZER_TORCH_INITIAL_STATES", ValueError, lstm, torch.randn(1, 4, 1),
            (torch.zeros(2, 1, 16), torch.zeros(2, 1, 16)))


def test_unavailable_cuda_falls_back_to_cpu_with_a_warning(model, tmp_path, caplog):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=torch.device("cuda"))
    assert "QUANTIZER_TORCH_CUDA_UNAVAILABLE" in caplog.text
