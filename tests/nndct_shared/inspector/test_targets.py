"""Target database: lookup by name / fingerprint, decoded families, unknown targets."""
from __future__ import annotations

import pytest

from nndct_shared.inspector import get_target, known_targets
from nndct_shared.messages import ArgumentError


def test_b4096_by_name_matches_its_prototxt():
    t = get_target("DPUCZDX8G_ISA1_B4096")
    assert t.fingerprint == 0x0101000056010407
    assert (t.conv.pixel_parallel, t.conv.input_channel_parallel,
            t.conv.output_channel_parallel) == (8, 16, 16)
    assert t.conv.kernel.text == "1-16" and t.conv.stride.text == "1-8"
    assert t.conv.nonlinear == ("relu", "leaky_relu", "relu6")
    assert (t.conv.weight_bank.bank_num, t.conv.weight_bank.bank_width,
            t.conv.weight_bank.bank_depth) == (16, 16, 2048)
    assert t.alu is not None and t.alu.pixel_parallel == 4 and t.alu.kernel.text == "1-256"
    assert t.alu.pad["left"].text == "0-15" and t.alu.pad["bottom"].text == "0-255"
    assert t.eltwise is not None and t.eltwise.types == ("add", "mult")
    assert t.bit_width == 8 and t.leaky_relu_alpha == 26 / 256


@pytest.mark.parametrize("key", ["dpuczdx8g_isa1_b4096", "0x101000056010407",
                                 "0x0101000056010407", 0x0101000056010407])
def test_lookup_by_name_or_fingerprint(key):
    assert get_target(key).name == "DPUCZDX8G_ISA1_B4096"


@pytest.mark.parametrize("name,bsize", [("DPUCZDX8G_ISA1_B512", 512), ("DPUCZDX8G_ISA1_B800", 800),
                                        ("DPUCZDX8G_ISA1_B1152", 1152),
                                        ("DPUCZDX8G_ISA1_B3136", 3136)])
def test_b_size_is_twice_the_parallelism(name, bsize):
    conv = get_target(name).conv
    assert 2 * conv.pixel_parallel * conv.input_channel_parallel * conv.output_channel_parallel \
        == bsize


def test_guide_fingerprints_decode_like_the_target_factory():
    guide = get_target("0x603000b16013831")              # the user guide's example
    assert guide.name == "DPUCVDX8G_ISA3_C32B3_0603000B16013831"
    assert (guide.conv.pixel_parallel, guide.conv.input_channel_parallel,
            guide.conv.output_channel_parallel, guide.batch) == (8, 16, 32, 3)
    assert "hswish" in guide.conv.nonlinear
    assert guide.conv.weight_bank.bank_depth == 4096      # RDEPTH 3 -> 2**12
    old = get_target("0x101000016010407")                  # B4096 before Vitis AI 3.0
    assert old.name == "DPUCZDX8G_ISA1_B4096_0101000016010407"
    assert old.conv == get_target("DPUCZDX8G_ISA1_B4096").conv


def test_seed_targets_are_known():
    names = known_targets()
    for name in ("DPUCAHX8L_ISA0_SP", "DPUCADF8H_ISA0", "DPUCAHX8H_ISA2", "DPUCZDX8G_ISA1_B4096",
                 "DPUCVDX8G_ISA3_C32B3", "DPUCV2DX8G_ISA0_C16M4B1"):
        assert name in names
    assert names["DPUCAHX8L_ISA0_SP"] == "0x030000000000101d"
    sp = get_target("DPUCAHX8L_ISA0_SP")
    assert (sp.conv.input_channel_parallel, sp.conv.output_channel_parallel,
            sp.conv.stride.text, sp.dwconv.kernel.text) == (32, 64, "1-4", "3")


@pytest.mark.parametrize("bad,what", [("DPUCADX8G", "target name"), ("0x7777", "fingerprint"),
                                      ("0xZZ", "fingerprint"), (3.5, "target")])
def test_unknown_target_lists_the_known_names(bad, what):
    with pytest.raises(ArgumentError) as info:
        get_target(bad)
    text = str(info.value)
    assert text.startswith("[VAIQ_ERROR][QUANTIZER_TORCH_UNKNOWN_TARGET]: ")
    assert f"Unknown DPU {what} {bad!r}." in text
    assert "DPUCZDX8G_ISA1_B4096 (0x0101000056010407)" in text
    assert "DPUCAHX8L_ISA0_SP (0x030000000000101d)" in text
