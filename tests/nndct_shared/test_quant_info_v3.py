"""quant_info.json of the CNN flow: the vai_q_pytorch 3.x format written and read, the older
single-pair format read, and every malformed file a QUANT_INFO_CORRUPT naming the problem."""
from __future__ import annotations

import json

import pytest

from nndct_shared.messages import QuantInfoError
from nndct_shared.quant_info import QuantInfo, read_quant_info, write_quant_info
from nndct_shared.quant_info_store import QuantInfoStore
from nndct_shared.quant_info_v3 import TOOL_VERSION, QuantRecord, read_record, to_json_text_v3

INFO = QuantInfo(param={"LeNet::conv1.weight": (8, 8), "LeNet::conv1.bias": (8, 6)},
                 output={"LeNet::nndct_input_0": (8, 6), "LeNet::nndct_relu_2": (8, None)})


def test_the_3x_layout_and_its_round_trip(tmp_path):
    record = QuantRecord(INFO, fast_finetuned=False, bias_corrected=True, graph_md5="ab" * 16)
    text = to_json_text_v3(record)
    assert text == (
        '{\n  "param":\n  {\n    "LeNet::conv1.weight":[[8,8]],\n    "LeNet::conv1.bias":[[8,6]]\n  },\n'
        '  "output":\n  {\n    "LeNet::nndct_input_0":[[8,6]],\n    "LeNet::nndct_relu_2":[[8,null]]\n  },\n'
        '  "input":\n  {\n\n  },\n  "fast_finetuned":false,\n  "bias_corrected":true,\n'
        f'  "version":"{TOOL_VERSION}",\n  "graph_md5":"{"ab" * 16}"\n}}')
    assert json.loads(text)["param"]["LeNet::conv1.weight"] == [[8, 8]]
    path = QuantInfoStore(tmp_path).write_record(record)
    back = read_record(path)
    assert back.info == INFO and back.layout == "3.x"
    assert (back.fast_finetuned, back.bias_corrected, back.version, back.graph_md5) == (
        False, True, TOOL_VERSION, "ab" * 16)
    assert to_json_text_v3(back) == text


def test_the_reference_3x_file_as_it_writes_it(tmp_path):
    """Indented JSON with spaces, a node entry of two outputs (kept apart), the reference's version."""
    doc = {"param": {"M::fc.weight": [[8, 7]]}, "output": {"M::nndct_input_0": [[8, 5]],
                                                           "M::nndct_chunk_1": [[8, 3], [8, 4]]},
           "input": {}, "fast_finetuned": True, "bias_corrected": False, "version": "3.5.0", "graph_md5": "x"}
    (tmp_path / "quant_info.json").write_text(json.dumps(doc, indent=2))
    record = read_record(tmp_path / "quant_info.json")
    assert record.info.param == {"M::fc.weight": (8, 7)} and record.info.output == {"M::nndct_input_0": (8, 5)}
    assert record.multi_output == {"M::nndct_chunk_1": [(8, 3), (8, 4)]}
    assert (record.fast_finetuned, record.version) == (True, "3.5.0")


def test_the_single_pair_format_reads_too(tmp_path):
    path = write_quant_info(QuantInfo(param={"FFN::l1.weight": (8, 6)}, output={"FFN::FFN/input.2": (8, 4)}),
                            tmp_path / "quant_info.json")
    record = QuantInfoStore(tmp_path).load_record()
    assert record.layout == "1.x" and record.info.output == {"FFN::FFN/input.2": (8, 4)}
    assert (record.fast_finetuned, record.bias_corrected, record.version, record.graph_md5) == (None,) * 4
    assert read_quant_info(path).param == record.info.param   # the LSTM flow's reader is unchanged


@pytest.mark.parametrize(("doc", "reason"), [
    ({"param": {"a": [[8, 6]]}, "output": {}, "input": {}}, "lacks the 3.x keys"),
    ({"param": {"a": [8, 6]}, "output": {}, "input": {}, "fast_finetuned": False, "bias_corrected": False,
      "version": "3.5.0", "graph_md5": ""}, "a list of [bit_width, fix_pos] pairs per entry"),
    ({"param": {"a": []}, "output": {}, "input": {}, "fast_finetuned": False, "bias_corrected": False,
      "version": "3.5.0", "graph_md5": ""}, "a list of [bit_width, fix_pos] pairs per entry"),
    ({"param": {}, "output": {}, "input": {}, "version": "3.5.0"}, 'missing "fast_finetuned"'),
    ({"param": {}, "output": {}, "input": {}, "fast_finetuned": "no", "bias_corrected": False,
      "version": "3.5.0", "graph_md5": ""}, '"fast_finetuned" is \'no\'; expected a bool'),
    ({"param": {"a": [[99, 6]]}, "output": {}, "input": {}, "fast_finetuned": False, "bias_corrected": False,
      "version": "3.5.0", "graph_md5": ""}, "bit_width 99"),
])
def test_malformed_files_are_named(tmp_path, doc, reason):
    (tmp_path / "quant_info.json").write_text(json.dumps(doc))
    with pytest.raises(QuantInfoError, match="QUANT_INFO_CORRUPT") as err:
        read_record(tmp_path / "quant_info.json")
    assert reason in str(err.value)
