"""Report file, screen summary, Graphviz pictures, hardware-aware adjustments, run_inspection."""
from __future__ import annotations

import logging
import shutil

import pytest
from graphs import small_net

from nndct_shared.graph import Graph
from nndct_shared.inspector import (hardware_aware_adjustments, hardware_aware_partition,
                                    inspect_graph, render_report, run_inspection, screen_summary,
                                    to_dot, write_images)
from nndct_shared.messages import ArgumentError, reset_warn_once

B4096 = "DPUCZDX8G_ISA1_B4096"


def tiny() -> Graph:
    g = Graph("Tiny")
    g.add("x", "input", shape=(1, 4, 2, 2))
    g.add("act", "sigmoid", ["x"], shape=(1, 4, 2, 2))
    return g


def test_report_summary_and_node_blocks_exact():
    text = render_report(inspect_graph(small_net(), B4096))
    lines = text.splitlines()
    start = lines.index("inspection summary:")
    assert lines[start + 2:start + 8] == [
        "The operators assigned to the CPU are as follows:",
        "node name  op type     hardware constraints",
        "---------  ----------  " + "-" * len(
            "'kernel'(17 x 17) is not in DPU supported range([1-16])."),
        "conv_big   conv2d      'kernel'(17 x 17) is not in DPU supported range([1-16]).",
        "leaky      leaky_relu  Its alpha is 0.1, but DPU only supports 0.1015625.",
        "flat       flatten     The input of flatten is not on DPU.",
    ]
    block = lines.index("node name: leaky")
    assert lines[block:block + 11] == [
        "node name: leaky",
        "input nodes: ['conv_big']",
        "output nodes: ['flat']",
        "op type: leaky_relu",
        "outputs shape: [[1, 8, 4, 4]]",
        "op attributes:",
        "  alpha: 0.1",
        "assigned device: CPU",
        "hardware constraints: Its alpha is 0.1, but DPU only supports 0.1015625.",
        "node messages:",
        "  hardware-aware quantization sets alpha from 0.1 to 0.1015625: the only LeakyReLU "
        "slope DPU supports",
    ]
    assert "subgraph_cpu_0 (CPU): conv_big, leaky, flat" in lines
    assert "name: DPUCZDX8G_ISA1_B4096" in lines and "fingerprint: 0x0101000056010407" in lines


def test_all_on_dpu_summary_and_verbose_levels():
    g = Graph("AllDpu")
    g.add("x", "input", shape=(1, 4, 2, 2))
    g.add("r", "relu", ["x"], shape=(1, 4, 2, 2))
    result = inspect_graph(g, B4096)
    assert "All the operators are assigned to the DPU." in render_report(result).splitlines()
    assert screen_summary(result, 0, "p.txt") is None
    assert screen_summary(result, 1, "p.txt") == (
        "All the operators are assigned to the DPU(see more details in 'p.txt')")
    assert screen_summary(result, 2, "p.txt").splitlines() == [
        "Operator device allocation table(see more details in 'p.txt'):",
        "node name  op type  assigned device",
        "---------  -------  ---------------",
        "x          input    DPU",
        "r          relu     DPU",
    ]
    assert screen_summary(inspect_graph(tiny(), B4096), 1, "p.txt").splitlines()[1:] == [
        "node name  op type  hardware constraints",
        "---------  -------  -------------------------------------------",
        "x          input    All the children nodes are assigned to CPU.",
        "act        sigmoid  DPU does not support sigmoid.",
    ]


def test_dot_source_exact():
    assert to_dot(inspect_graph(tiny(), B4096)) == (
        'digraph "Tiny" {\n'
        '  graph [label="Tiny on DPUCZDX8G_ISA1_B4096"];\n'
        '  node [shape=box fontname="Helvetica" fontsize=10];\n'
        '  subgraph "cluster_subgraph_cpu_0" {\n'
        '    label="subgraph_cpu_0"; color=red;\n'
        '    n0 [label="type:input\\nname:x\\nassigned device:CPU\\nout shape:[[1, 4, 2, 2]]"'
        ' color=red];\n'
        '    n1 [label="type:sigmoid\\nname:act\\nassigned device:CPU\\nout shape:[[1, 4, 2, 2]]"'
        ' color=red];\n'
        '  }\n'
        '  n0 -> n1;\n'
        '}\n')


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("fmt,magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_pictures_drawn_with_dot(tmp_path, fmt, magic):
    paths = write_images(inspect_graph(small_net(), B4096), tmp_path, fmt)
    assert [p.name for p in paths] == ["inspect_DPUCZDX8G_ISA1_B4096.gv",
                                       f"inspect_DPUCZDX8G_ISA1_B4096.{fmt}"]
    data = paths[1].read_bytes()
    assert magic in data[:400]
    if fmt == "svg":
        assert b"subgraph_cpu_0" in data and b"conv_big" in data


def test_missing_dot_writes_gv_and_warns_once(tmp_path, monkeypatch, caplog):
    import nndct_shared.inspector.render as render
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    reset_warn_once()
    result = inspect_graph(tiny(), B4096)
    with caplog.at_level(logging.WARNING, logger="nndct"):
        first = write_images(result, tmp_path, "png")
        second = write_images(result, tmp_path, "png")
    assert [p.name for p in first] == [p.name for p in second] == ["inspect_DPUCZDX8G_ISA1_B4096.gv"]
    warnings = [r.getMessage() for r in caplog.records if "DOT_NOT_FOUND" in r.getMessage()]
    assert len(warnings) == 1 and "inspect_DPUCZDX8G_ISA1_B4096.gv" in warnings[0]


def test_bad_image_format_is_a_catalogued_error(tmp_path):
    with pytest.raises(ArgumentError, match=r"QUANTIZER_TORCH_INSPECTOR_OUTPUT_FORMAT.*'jpg'"):
        run_inspection(tiny(), B4096, tmp_path, image_format="jpg")
    assert not list(tmp_path.iterdir())


def test_run_inspection_writes_report_and_notes(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="nndct"):
        result, paths = run_inspection(small_net(), "0x101000056010407", tmp_path / "out",
                                       verbose_level=1, image_format=None)
    assert [p.name for p in paths] == ["inspect_DPUCZDX8G_ISA1_B4096.txt"]
    assert paths[0].read_text() == render_report(result)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].endswith("=>Start to inspect model...")
    assert messages[-1].endswith("=>Finish inspecting.")
    assert any("The operators assigned to the CPU are as follows" in m for m in messages)


def test_hardware_aware_adjustments():
    adjustments = hardware_aware_adjustments(small_net(), B4096)
    # the slope change moves leaky (and the flatten after it) to the DPU, so conv_big, on the
    # CPU for its 17x17 kernel, keeps its params float but feeds the DPU: its output is a DPU input
    assert [(a.node, a.kind, a.attr, a.old, a.new) for a in adjustments] == [
        ("leaky", "leaky_relu_alpha", "alpha", 0.1, 0.1015625),
        ("conv_big", "keep_float", "weight", None, None),
        ("conv_big", "keep_float", "bias", None, None),
        ("conv_big", "dpu_input", "output", None, None),
        ("prob", "keep_float", "output", None, None),
    ]
    assert adjustments[3].reason == ("it runs on CPU ('kernel'(17 x 17) is not in DPU supported "
                                     "range([1-16]).) and DPU node 'leaky' reads it")
    g = small_net()
    g.node("conv1").attrs["fix"] = (16, 10)
    g.node("fc").params["weight"].attrs["fix"] = (4, 2)
    bits = [(a.node, a.attr, a.old, a.new) for a in hardware_aware_adjustments(g, B4096)
            if a.kind == "bit_width"]
    assert bits == [("conv1", "output", 16, 8), ("fc", "weight", 4, 8)]


def test_hardware_aware_partition_follows_the_adjustments():
    graph = small_net()
    devices = {n: a.device for n, a in hardware_aware_partition(graph, B4096).assignments.items()}
    assert devices == {"input_0": "DPU", "conv1": "DPU", "relu1": "DPU", "conv_big": "CPU",
                       "leaky": "DPU", "flat": "DPU", "fc": "DPU", "prob": "CPU"}
    assert graph.node("leaky").attrs["alpha"] == 0.1          # the caller's graph is not changed


def test_hardware_aware_scope_is_the_quantized_part():
    """Nodes outside the model's QuantStub regions run in float: no adjustment, on the CPU."""
    graph = small_net()
    quantized = {"input_0", "conv1", "relu1", "conv_big", "leaky", "flat"}
    result = hardware_aware_partition(graph, B4096, quantized)
    assert result.assignments["fc"].reason == "Not in quantizable part."
    assert result.device_of("flat") == "DPU"
    assert [(a.node, a.kind, a.attr) for a in hardware_aware_adjustments(graph, B4096, quantized)] == [
        ("leaky", "leaky_relu_alpha", "alpha"),
        ("conv_big", "keep_float", "weight"),
        ("conv_big", "keep_float", "bias"),
        ("conv_big", "dpu_input", "output"),
    ]


def test_leaky_relu_the_target_cannot_run_keeps_its_slope():
    """DPUCAHX8L has no LeakyReLU at all: changing the slope would not help, so it is kept."""
    result = hardware_aware_partition(small_net(), "DPUCAHX8L_ISA0")
    assert result.assignments["leaky"].reason == "DPUCAHX8L_ISA0 does not support leaky_relu."
    assert result.assignments["leaky"].notes == ()
    assert inspect_graph(small_net(), "DPUCAHX8L_ISA0").assignments["leaky"].notes == ()
    kinds = [(a.node, a.kind) for a in hardware_aware_adjustments(small_net(), "DPUCAHX8L_ISA0")]
    assert ("leaky", "leaky_relu_alpha") not in kinds
    assert ("leaky", "keep_float") in kinds


def test_every_operator_has_a_device_and_a_reason_in_the_report():
    result = inspect_graph(small_net(), B4096)
    text = render_report(result)
    blocks = text.split("=" * 100 + "\nnode name: ")[1:]
    assert len(blocks) == len(result.assignments)
    for block, assignment in zip(blocks, result.assignments.values()):
        lines = block.splitlines()
        assert lines[0] == assignment.name
        assert f"assigned device: {assignment.device}" in lines
        assert assignment.why
        key = "dpu engine: " if assignment.device == "DPU" else "hardware constraints: "
        assert key + assignment.why in lines
    assert result.assignments["conv1"].engine == (
        "Convolution within the kernel, stride, channel and weight-buffer limits of the conv_engine.")
    assert result.assignments["relu1"].engine == "Fused into 'conv1' as the nonlinear function of its engine."
    assert result.assignments["fc"].engine == "Runs as a 1x1 convolution on the conv_engine."
    assert result.assignments["conv_big"].engine == ""
