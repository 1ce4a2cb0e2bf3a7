"""quantizer.report() of the LSTM flow on the example's real classifier (JapaneseVowels): the
numbers against independent computations, a node forced to saturate ranked first, the HTML page
parsed with every plot, the suggestion's config file, and the quantizer left as it was."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from helpers.example_files import import_example_file
from helpers.report_checks import ReportPlots
from helpers.report_checks import accuracy as _accuracy
from helpers.report_checks import calibrated as _calibrated
from nndct_shared.lstm.naming import NODE_NAMES, PARAM_NAMES
from nndct_shared.messages import NndctError
from nndct_shared.report.metrics import output_error
from nndct_shared.report.recurrent import recurrent_cell
from nndct_shared.report.recurrent_config import check_recurrent_config
from pytorch_nndct.apis import torch_quantizer

CPU = torch.device("cpu")
GRAPH = "Lstm_StandardLstmCell_layer_0_forward"


@pytest.fixture(scope="module")
def example():
    data = import_example_file("data.py", "lstm_example_data")
    script = import_example_file("pytorch/quantize_lstm.py", "lstm_example_torch_script")
    _, _, x_test, y_test = data.load_dataset()
    model = script.load_float_model(script.DEFAULT_CHECKPOINT)
    return model, torch.from_numpy(x_test[:80]), torch.from_numpy(y_test[:80]).long()


def test_report_numbers_against_independent_computations(example, tmp_path):
    model, x, _ = example
    c = _calibrated(model, x, tmp_path, 16)
    fix = c.session.cells[0].calibration.aligned()
    c.export_quant_config()
    q = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    result = q.report(x, output_dir=tmp_path / "rep", sensitivity=False)
    doc = result.data
    assert json.loads(result.json.read_text()) == json.loads(json.dumps(doc))
    # the float LSTM (torch, float64) and the quantized datapath, compared without the report
    lstm = model.lstm.double()
    with torch.no_grad():
        h_float, _ = lstm(x.double())
        logits_float = model.classifier(h_float[:, -1].float()).double().numpy()
        h_quant, _ = q.quant_model.lstm(x)
        logits_quant = q.quant_model(x).double().numpy()
    model.lstm.float()
    h_float, h_quant = h_float.numpy(), h_quant.double().numpy()
    rows = {r["name"]: r for r in doc["tensors"]}
    h_row = rows[f"{GRAPH}::h_next"]
    expected = 10 * math.log10(np.sum(h_float ** 2) / np.sum((h_quant - h_float) ** 2))
    assert h_row["sqnr_db"] == pytest.approx(expected, abs=1e-6)
    (cell,) = doc["cells"]
    assert cell["nodes"] == list(NODE_NAMES) and cell["steps"] == x.shape[1]
    h_index = NODE_NAMES.index("h_next")
    for t in (0, 5, x.shape[1] - 1):
        err = h_quant[:, t] - h_float[:, t]
        assert cell["node_sqnr_db"][h_index][t] == pytest.approx(
            10 * math.log10(np.sum(h_float[:, t] ** 2) / np.sum(err ** 2)), abs=1e-5)
        assert cell["drift"]["h"]["rms_error"][t] == pytest.approx(math.sqrt(np.mean(err ** 2)), rel=1e-6)
    assert doc["model"]["output_error"] == pytest.approx(output_error([logits_float], [logits_quant]), rel=1e-4)
    # the grid of every tensor is the one quant_info.json holds (the aligned calibration)
    assert [rows[f"{GRAPH}::{n}"]["fix_pos"] for n in NODE_NAMES] == fix.node
    assert all(rows[f"{GRAPH}::{n}"]["bit_width"] == 16 for n in (*NODE_NAMES, *PARAM_NAMES))
    w = model.lstm.weight_hh_l0.detach().double().numpy()[:32]
    wq = np.round(w * 2.0 ** fix.param["weight_hi"]) / 2.0 ** fix.param["weight_hi"]
    assert rows[f"{GRAPH}::weight_hi"]["sqnr_db"] == pytest.approx(
        10 * math.log10(np.sum(w ** 2) / np.sum((wq - w) ** 2)), abs=1e-6)
    assert cell["evaluation_matches_datapath"] is True


def test_a_node_forced_to_saturate_is_ranked_first(example, tmp_path):
    model, x, y = example
    q = _calibrated(model, x, tmp_path, 16)
    q.export_quant_config()
    info = json.loads((tmp_path / "quant_info.json").read_text())
    info["output"][f"{GRAPH}::y_g"][1] = 15  # range [-1, 1): the cell candidate's pre-activation saturates
    (tmp_path / "quant_info.json").write_text(json.dumps(info))
    t = torch_quantizer("test", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    result = t.report(x, eval_fn=lambda m: _accuracy(m, x, y))
    rows = result.data["sensitivity"]["rows"]
    assert rows[0]["name"] == f"{GRAPH}::y_g" and rows[0]["rank"] == 1
    assert len(rows) == 36 and sorted(r["rank"] for r in rows) == list(range(1, 37))
    assert rows[0]["only_error"] > 10 * rows[1]["only_error"]
    tensors = {r["name"]: r for r in result.data["tensors"]}
    assert tensors[f"{GRAPH}::y_g"]["clipped_share"] > 0.05
    assert max(tensors.values(), key=lambda r: r["clipped_share"])["name"] == f"{GRAPH}::y_g"
    # with every tensor but y_g quantized the model is as good as at 16 bits: its "all but" error is the least
    assert min(rows, key=lambda r: r["all_but_error"])["name"] == f"{GRAPH}::y_g"
    assert result.data["model"]["metric_quantized"] == pytest.approx(_accuracy(t.quant_model, x, y))


def test_html_page_has_every_plot_and_the_json_numbers(example, tmp_path):
    model, x, y = example
    q = _calibrated(model, x, tmp_path, 8)
    result = q.report(x, eval_fn=lambda m: _accuracy(m, x, y))
    html = result.html.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    parser = ReportPlots()
    parser.feed(html)
    assert parser.plots.count(("sensitivity", None)) == 1
    for kind in ("cell-node-sqnr", "cell-drift", "cell-node-overall"):
        assert (kind, GRAPH) in parser.plots
    heat = parser.texts[parser.plots.index(("cell-node-sqnr", GRAPH))]
    labels = [t[1] for t in heat if t[0] == "text"]
    assert all(name in labels for name in NODE_NAMES)
    drift = parser.texts[parser.plots.index(("cell-drift", GRAPH))]
    lines = [t for t in drift if t[0] == "polyline"]
    assert [t[1] for t in lines] == ["h (h_next)", "c (c_next)"]
    assert all(len(t[2].split()) == x.shape[1] for t in lines)
    doc = result.data
    assert doc["flow"] == "lstm" and doc["mode"] == "calib" and doc["bit_widths"] == [8]
    assert doc["model"]["metric_float"] > doc["model"]["metric_quantized"]


def test_suggestion_reaches_the_target_and_its_config_passes_the_schema_check(example, tmp_path):
    model, x, y = example
    q = _calibrated(model, x, tmp_path, 8)
    result = q.report(x, eval_fn=lambda m: _accuracy(m, x, y), max_metric_drop=0.0)
    s = result.data["suggestion"]
    assert s["reached"] and s["keep"] and s["metric"] >= result.data["model"]["metric_float"]
    config = json.loads(result.config.read_text())
    tensors = recurrent_cell(q.session.cells[0]).tensors()
    parsed = check_recurrent_config(result.config, tensors)
    assert [e.layer_name for e in parsed.layer_quantize_config] == s["keep"]
    assert all(e.overall_quantize_config.bit_width == 16 for e in parsed.layer_quantize_config)
    assert config["overall_quantize_config"]["bit_width"] == 8
    # leaving any one tensor of the suggestion out misses the target (minimal set)
    assert s["evaluations"] >= len(s["keep"])
    bad = json.loads(json.dumps(config))
    bad["layer_quantize_config"][0]["layer_name"] = f"{GRAPH}::no_such_node"
    with pytest.raises(NndctError) as info:
        check_recurrent_config(bad, tensors)
    assert info.value.msg_id.endswith("RECURRENT_CONFIG_INVALID")
    bad = json.loads(json.dumps(config))
    bad["layer_quantize_config"][0]["overall_quantize_config"]["round_mode"] = "half_up"
    with pytest.raises(NndctError):
        check_recurrent_config(bad, tensors)


def test_report_leaves_the_quantizer_as_it_was(example, tmp_path):
    model, x, _ = example
    a = _calibrated(model, x, tmp_path / "a", 8)
    b = _calibrated(model, x, tmp_path / "b", 8)
    b.report(x[:20])
    assert (a.export_quant_config().read_text() == b.export_quant_config().read_text())
    t = torch_quantizer("test", model, bitwidth=8, lstm=True, output_dir=str(tmp_path / "a"), device=CPU)
    t.quant_model(x[:1])
    t.report(x[:30], sensitivity=False)
    assert t.quant_rnns[0].first_batch[0].shape[0] == 1  # the first batch kept for the dumps


def test_report_errors_are_catalogued(example, tmp_path):
    model, x, _ = example
    q = torch_quantizer("calib", model, bitwidth=16, lstm=True, output_dir=str(tmp_path), device=CPU)
    with pytest.raises(NndctError) as info:
        q.report(x)
    assert info.value.msg_id == "QUANTIZER_TORCH_REPORT_NOT_CALIBRATED"
    q.quant_model(x)
    with pytest.raises(NndctError) as info:
        q.report(x, eval_fn=lambda m: "high")
    assert info.value.msg_id == "QUANTIZER_TORCH_REPORT_EVAL_FN"
    with pytest.raises(NndctError) as info:
        q.report(x, target_error=-1)
    assert info.value.msg_id == "QUANTIZER_TORCH_REPORT_ARGUMENT"
    assert not (tmp_path / "quant_report.html").exists()
