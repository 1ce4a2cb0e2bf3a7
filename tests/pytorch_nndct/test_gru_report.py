"""quantizer.report() of the recurrent flow on GRU cells: the GRU example's real speaker classifier
(JapaneseVowels, shipped checkpoint), the numbers against independent computations, a GRU node
forced to saturate ranked first, the HTML page parsed with every plot (one drift curve: a GRU has
no c), and a model mixing an LSTM and a GRU."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers.example_files import GRU_EXAMPLE_DIR, import_example_file
from helpers.report_checks import ReportPlots
from helpers.report_checks import accuracy as _accuracy
from helpers.report_checks import calibrated as _calibrated
from nndct_shared.gru.naming import RESET_AFTER_NODE_NAMES, RESET_AFTER_PARAM_NAMES
from nndct_shared.report.metrics import output_error
from nndct_shared.report.recurrent import recurrent_cell
from nndct_shared.report.recurrent_config import check_recurrent_config
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")
GRAPH = "Gru_StandardGruCell_layer_0_forward"


@pytest.fixture(scope="module")
def example():
    data = import_example_file("data.py", "lstm_example_data")
    script = import_example_file("pytorch/quantize_gru.py", "gru_example_report_script", GRU_EXAMPLE_DIR)
    _, _, x_test, y_test = data.load_dataset()
    model = script.load_float_model(GRU_EXAMPLE_DIR / "pytorch" / "pretrained.pth")
    return model, torch.from_numpy(x_test[:80]), torch.from_numpy(y_test[:80]).long()


def test_gru_report_numbers_against_independent_computations(example, tmp_path):
    model, x, _ = example
    c = _calibrated(model, x, tmp_path, 16)
    fix = c.session.cells[0].calibration.aligned()
    c.export_quant_config()
    q = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    result = q.report(x, output_dir=tmp_path / "rep", sensitivity=False)
    doc = result.data
    assert json.loads(result.json.read_text()) == json.loads(json.dumps(doc))
    # the float GRU (torch, float64) and the quantized datapath, compared without the report
    gru = model.gru.double()
    with torch.no_grad():
        h_float, _ = gru(x.double())
        logits_float = model.classifier(h_float[:, -1].float()).double().numpy()
        h_quant, _ = q.quant_model.gru(x)
        logits_quant = q.quant_model(x).double().numpy()
    model.gru.float()
    h_float, h_quant = h_float.numpy(), h_quant.double().numpy()
    rows = {r["name"]: r for r in doc["tensors"]}
    expected = 10 * math.log10(np.sum(h_float ** 2) / np.sum((h_quant - h_float) ** 2))
    assert rows[f"{GRAPH}::h_next"]["sqnr_db"] == pytest.approx(expected, abs=1e-6)
    (cell,) = doc["cells"]
    assert cell["cell"] == "StandardGruCell" and cell["variant"] == "reset_after"
    assert cell["nodes"] == list(RESET_AFTER_NODE_NAMES) and cell["steps"] == x.shape[1]
    # one recurrent state: the JSON has no c anywhere, and says why
    assert cell["states"] == ["h"] and list(cell["drift"]) == ["h"] and cell["drift"]["h"]["node"] == "h_next"
    assert "no cell state c" in cell["note"]
    h_index = RESET_AFTER_NODE_NAMES.index("h_next")
    for t in (0, 7, x.shape[1] - 1):
        err = h_quant[:, t] - h_float[:, t]
        assert cell["node_sqnr_db"][h_index][t] == pytest.approx(
            10 * math.log10(np.sum(h_float[:, t] ** 2) / np.sum(err ** 2)), abs=1e-5)
        assert cell["drift"]["h"]["rms_error"][t] == pytest.approx(math.sqrt(np.mean(err ** 2)), rel=1e-6)
        assert cell["drift"]["h"]["rms_float"][t] == pytest.approx(math.sqrt(np.mean(h_float[:, t] ** 2)), rel=1e-9)
    assert doc["model"]["output_error"] == pytest.approx(output_error([logits_float], [logits_quant]), rel=1e-4)
    assert [rows[f"{GRAPH}::{n}"]["fix_pos"] for n in RESET_AFTER_NODE_NAMES] == fix.node
    assert all(rows[f"{GRAPH}::{n}"]["bit_width"] == 16 for n in (*RESET_AFTER_NODE_NAMES, *RESET_AFTER_PARAM_NAMES))
    w = model.gru.weight_hh_l0.detach().double().numpy()[64:]  # the candidate's rows: weight_hg
    fp = fix.param["weight_hg"]
    wq = np.clip(np.sign(w) * np.floor(np.abs(w) * 2.0 ** fp + 0.5), -32768, 32767) / 2.0 ** fp
    assert rows[f"{GRAPH}::weight_hg"]["sqnr_db"] == pytest.approx(
        10 * math.log10(np.sum(w ** 2) / np.sum((wq - w) ** 2)), abs=1e-6)
    assert cell["evaluation_matches_datapath"] is True


def test_a_gru_node_forced_to_saturate_is_ranked_first(example, tmp_path):
    model, x, y = example
    q = _calibrated(model, x, tmp_path, 16)
    q.export_quant_config()
    info = json.loads((tmp_path / "quant_info.json").read_text())
    node = f"{GRAPH}::y_g"
    info["output"][node][1] = 15  # range [-1, 1): the candidate's pre-activation saturates
    (tmp_path / "quant_info.json").write_text(json.dumps(info))
    t = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    result = t.report(x, eval_fn=lambda m: _accuracy(m, x, y))
    rows = result.data["sensitivity"]["rows"]
    count = len(RESET_AFTER_NODE_NAMES) + len(RESET_AFTER_PARAM_NAMES)
    assert len(rows) == count == 31 and sorted(r["rank"] for r in rows) == list(range(1, count + 1))
    assert rows[0]["name"] == node and rows[0]["rank"] == 1
    assert rows[0]["only_error"] > 10 * rows[1]["only_error"]
    tensors = {r["name"]: r for r in result.data["tensors"]}
    assert tensors[node]["clipped_share"] > 0.05
    assert max(tensors.values(), key=lambda r: r["clipped_share"])["name"] == node
    assert min(rows, key=lambda r: r["all_but_error"])["name"] == node
    assert result.data["model"]["metric_quantized"] == pytest.approx(_accuracy(t.quant_model, x, y))
    # every tensor is at 16 bits already: the report says there is nothing to widen
    assert any("nothing to widen" in n for n in result.data["notes"])


def test_gru_html_page_has_every_plot_and_one_drift_curve(example, tmp_path):
    model, x, _ = example
    q = _calibrated(model, x, tmp_path, 8)
    result = q.report(x)  # the suggestion's target: output error 0.01 (8 bits: about 0.1)
    html = result.html.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    parser = ReportPlots()
    parser.feed(html)
    assert parser.plots.count(("sensitivity", None)) == 1
    for kind in ("cell-node-sqnr", "cell-drift", "cell-node-overall"):
        assert (kind, GRAPH) in parser.plots
    heat = parser.texts[parser.plots.index(("cell-node-sqnr", GRAPH))]
    labels = [t[1] for t in heat if t[0] == "text"]
    assert all(name in labels for name in RESET_AFTER_NODE_NAMES)
    drift = parser.texts[parser.plots.index(("cell-drift", GRAPH))]
    lines = [t for t in drift if t[0] == "polyline"]
    assert [t[1] for t in lines] == ["h (h_next)"]
    assert len(lines[0][2].split()) == x.shape[1]
    assert f"{GRAPH}: drift of h from float" in [t[1] for t in drift if t[0] == "text"]
    assert "StandardGruCell (reset after)" in html and "it has no cell state c" in html
    doc = result.data
    assert doc["flow"] == "lstm" and doc["mode"] == "calib" and doc["bit_widths"] == [8]
    # the 16-bit suggestion reaches the target; its config names GRU tensors and passes the schema check
    s = doc["suggestion"]
    assert s["reached"] and s["keep"] and s["output_error"] <= 0.01 < doc["model"]["output_error"]
    ranked = [r["name"] for r in doc["sensitivity"]["rows"]]
    assert set(s["keep"]) <= set(ranked[:2 * len(s["keep"])])  # the most sensitive GRU nodes
    parsed = check_recurrent_config(result.config, recurrent_cell(q.session.cells[0]).tensors())
    assert [e.layer_name for e in parsed.layer_quantize_config] == s["keep"]
    assert all(name.startswith(f"{GRAPH}::") for name in s["keep"])


class _Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.lstm = nn.LSTM(12, 10, batch_first=True)
        self.gru = nn.GRU(10, 8, batch_first=True, bidirectional=True)
        self.head = nn.Linear(16, 9)

    def forward(self, x):
        return self.head(self.gru(self.lstm(x)[0])[0][:, -1])


def test_model_with_lstm_and_gru_reports_every_cell(example, tmp_path):
    _, x, _ = example
    model = _Mixed().eval()
    _calibrated(model, x[:30], tmp_path, 8).export_quant_config()
    q = torch_quantizer("test", model, bitwidth=8, lstm=True, output_dir=str(tmp_path), device=CPU)
    doc = q.report(x[:30], sensitivity=False).data
    cells = {c["graph"]: c for c in doc["cells"]}
    assert sorted(cells) == ["Gru_StandardGruCell_layer_0_backward", "Gru_StandardGruCell_layer_0_forward",
                             "Lstm_StandardLstmCell_layer_0_forward"]
    assert list(cells["Lstm_StandardLstmCell_layer_0_forward"]["drift"]) == ["h", "c"]
    assert all(list(cells[g]["drift"]) == ["h"] for g in cells if "Gru" in g)
    assert all(c["evaluation_matches_datapath"] for c in cells.values())
    assert len(doc["tensors"]) == 2 * (19 + 12) + 24 + 12
    with torch.no_grad():
        expected = output_error([model(x[:30]).double().numpy()], [q.quant_model(x[:30]).double().numpy()])
    assert doc["model"]["output_error"] == pytest.approx(expected, rel=1e-4)
