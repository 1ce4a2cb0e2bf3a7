"""The DPU target database: what each DPU can run, looked up by name or by fingerprint.

Why a database of our own: the reference Inspector asked the closed `xcompiler` / target
factory packages; this project ships the documented constraints instead, so `Inspector` and
hardware-aware quantization (`target=`) work from a plain install. The numbers live in
`targets.json` (package data, every entry names its source: the Vitis AI target prototxts,
UG1414 and the DPU product guides).

Two kinds of entries:

- explicit targets (DPUCAHX8L, DPUCAHX8H, DPUCADF8H, DPUCV2DX8G), written out engine by engine;
- configurable families (DPUCZDX8G ISA1, DPUCVDX8G ISA3), whose engines the target factory
  decodes from the fingerprint's feature code. Registered names (e.g. `DPUCZDX8G_ISA1_B4096`)
  map to a fingerprint; any other valid fingerprint of these families (e.g. the guide's
  `0x603000b16013831`, or the older B4096 fingerprint `0x101000016010407`) is decoded too and
  named as the target factory names it (`DPUCVDX8G_ISA3_C32B3_0603000B16013831`).

Constraints that hold for every DPU: 8-bit quantization only (`BIT_WIDTH`), LeakyReLU slope
26/256 only (`LEAKY_RELU_ALPHA`), feature maps of at most 4 dimensions (`MAX_TENSOR_DIMS`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..messages import error

__all__ = [
    "BIT_WIDTH",
    "LEAKY_RELU_ALPHA",
    "MAX_TENSOR_DIMS",
    "AluEngine",
    "Bank",
    "ConvEngine",
    "DpuTarget",
    "DwconvEngine",
    "EltwiseEngine",
    "Limit",
    "PoolEngine",
    "get_target",
    "known_targets",
]

#: DPUs compute in int8 (UG1414 "Quantization": "the DPU supports only 8-bit"); user guide
#: message QUANTIZER_TORCH_*: "DPU is int8-only" (peers-and-users need #9).
BIT_WIDTH = 8
#: The only LeakyReLU slope DPUs implement (user guide warning LEAKYRELU: 0.1015625 = 26/256).
LEAKY_RELU_ALPHA = 26.0 / 256.0
#: DPU feature maps are NHWC tensors (UG1414 XIR: 4-D data); larger ranks run on the CPU.
MAX_TENSOR_DIMS = 4

_DATA_FILE = Path(__file__).with_name("targets.json")
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


@dataclass(frozen=True)
class Limit:
    """A set of allowed integers written as the target prototxts write it: "1-16", "2,3,5"."""

    text: str
    values: frozenset[int] = field(compare=False, repr=False, default=frozenset())

    @classmethod
    def parse(cls, text: str) -> "Limit":
        values: set[int] = set()
        for item in str(text).split(","):
            match = _RANGE.match(item)
            if match:
                values.update(range(int(match.group(1)), int(match.group(2)) + 1))
            else:
                values.add(int(item))
        return cls(str(text), frozenset(values))

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return f"[{self.text}]"


@dataclass(frozen=True)
class Bank:
    """An on-chip parameter buffer: `bank_num` banks of `bank_width` x `bank_depth`."""

    bank_num: int
    bank_width: int
    bank_depth: int


@dataclass(frozen=True)
class ConvEngine:
    input_channel_parallel: int
    output_channel_parallel: int
    pixel_parallel: int
    kernel: Limit
    stride: Limit
    nonlinear: tuple[str, ...]
    weight_bank: Bank


@dataclass(frozen=True)
class AluEngine:
    """The misc engine of newer DPUs: depthwise conv, pooling, (some) eltwise, softmax."""

    channel_parallel: int
    pixel_parallel: int
    types: tuple[str, ...]
    kernel: Limit
    stride: Limit
    pad: dict[str, Limit]
    nonlinear: tuple[str, ...]
    weight_bank: Bank | None


@dataclass(frozen=True)
class PoolEngine:
    channel_parallel: int
    types: tuple[str, ...]
    avg_kernel: Limit
    avg_stride: Limit
    max_kernel: Limit
    max_stride: Limit
    avg_square: bool


@dataclass(frozen=True)
class DwconvEngine:
    channel_parallel: int
    kernel: Limit
    stride: Limit
    nonlinear: tuple[str, ...]
    weight_bank: Bank | None


@dataclass(frozen=True)
class EltwiseEngine:
    channel_parallel: int
    types: tuple[str, ...]
    nonlinear: tuple[str, ...]


@dataclass(frozen=True)
class DpuTarget:
    """One DPU configuration and the engines it has (None: the DPU lacks that engine)."""

    name: str
    type: str
    isa_version: int
    feature_code: int
    type_code: int
    load_channel_parallel: int
    conv: ConvEngine
    alu: AluEngine | None = None
    pool: PoolEngine | None = None
    dwconv: DwconvEngine | None = None
    eltwise: EltwiseEngine | None = None
    batch: int = 1
    restrictions: tuple[str, ...] = ()
    boards: str = ""
    source: str = ""

    bit_width: int = BIT_WIDTH
    leaky_relu_alpha: float = LEAKY_RELU_ALPHA
    max_tensor_dims: int = MAX_TENSOR_DIMS

    @property
    def fingerprint(self) -> int:
        """type << 56 | isa_version << 48 | feature_code, as the target factory computes it."""
        return (self.type_code << 56) | (self.isa_version << 48) | self.feature_code

    @property
    def fingerprint_hex(self) -> str:
        return f"0x{self.fingerprint:016x}"

    def activations(self) -> frozenset[str]:
        """Every nonlinear function some engine of this DPU applies (fused or standalone)."""
        found: set[str] = set(self.conv.nonlinear)
        for engine in (self.alu, self.dwconv, self.eltwise):
            if engine is not None:
                found.update(engine.nonlinear)
        if self.alu is not None:
            found.update(t for t in self.alu.types if t in ("leaky_relu", "hsigmoid"))
        return frozenset(found)

    def eltwise_types(self) -> frozenset[str]:
        """"add" / "mult" on the eltwise engine, or on the ALU as elew_add / elew_mult."""
        found = set(self.eltwise.types) if self.eltwise is not None else set()
        if self.alu is not None:
            found.update(t[len("elew_"):] for t in self.alu.types if t.startswith("elew_"))
        return frozenset(found)

    def describe(self) -> str:
        """Target information for the report: identity, parallelism and every engine limit."""
        conv = self.conv
        lines = [
            f"name: {self.name}",
            f"type: {self.type}",
            f"isa_version: {self.isa_version}",
            f"fingerprint: {self.fingerprint_hex}",
        ]
        if self.boards:
            lines.append(f"boards: {self.boards}")
        lines += [
            f"batch: {self.batch}",
            f"bit width: {self.bit_width} (int8 only)",
            f"leaky_relu alpha: {self.leaky_relu_alpha} (26/256 only)",
            f"max tensor dims: {self.max_tensor_dims}",
            f"load_engine: channel_parallel={self.load_channel_parallel}",
            f"conv_engine: pixel_parallel={conv.pixel_parallel} "
            f"input_channel_parallel={conv.input_channel_parallel} "
            f"output_channel_parallel={conv.output_channel_parallel} kernel={conv.kernel} "
            f"stride={conv.stride} nonlinear={list(conv.nonlinear)} "
            f"weight_bank={_bank_text(conv.weight_bank)}",
        ]
        if self.alu is not None:
            alu = self.alu
            pads = " ".join(f"pad_{k}={v}" for k, v in alu.pad.items())
            lines.append(f"alu_engine: channel_parallel={alu.channel_parallel} "
                         f"pixel_parallel={alu.pixel_parallel} types={list(alu.types)} "
                         f"kernel={alu.kernel} stride={alu.stride} {pads} "
                         f"nonlinear={list(alu.nonlinear)}")
        if self.pool is not None:
            pool = self.pool
            lines.append(f"pool_engine: channel_parallel={pool.channel_parallel} "
                         f"types={list(pool.types)} avg_kernel={pool.avg_kernel} "
                         f"avg_stride={pool.avg_stride} max_kernel={pool.max_kernel} "
                         f"max_stride={pool.max_stride} avg_square={pool.avg_square}")
        if self.dwconv is not None:
            dw = self.dwconv
            lines.append(f"dwconv_engine: channel_parallel={dw.channel_parallel} "
                         f"kernel={dw.kernel} stride={dw.stride} nonlinear={list(dw.nonlinear)}")
        if self.eltwise is not None:
            el = self.eltwise
            lines.append(f"eltwise_engine: channel_parallel={el.channel_parallel} "
                         f"types={list(el.types)} nonlinear={list(el.nonlinear)}")
        if self.restrictions:
            lines.append(f"restrictions: {', '.join(self.restrictions)}")
        if self.source:
            lines.append(f"source: {self.source}")
        return "\n".join(lines)


def _bank_text(bank: Bank | None) -> str:
    if bank is None:
        return "None"
    return f"{bank.bank_num}x{bank.bank_width}x{bank.bank_depth}"


# --- loading ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _database() -> dict[str, Any]:
    with open(_DATA_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def _bank(spec: dict[str, Any] | None) -> Bank | None:
    return None if spec is None else Bank(int(spec["bank_num"]), int(spec["bank_width"]),
                                          int(spec["bank_depth"]))


def _target_from_entry(entry: dict[str, Any], type_codes: dict[str, int]) -> DpuTarget:
    conv = entry["conv_engine"]
    alu = entry.get("alu_engine")
    pool = entry.get("pool_engine")
    dw = entry.get("dwconv_engine")
    el = entry.get("eltwise_engine")
    return DpuTarget(
        name=entry["name"],
        type=entry["type"],
        isa_version=int(entry["isa_version"]),
        feature_code=int(entry["feature_code"], 16),
        type_code=int(type_codes[entry["type"]]),
        load_channel_parallel=int(entry["load_engine"]["channel_parallel"]),
        conv=ConvEngine(int(conv["input_channel_parallel"]), int(conv["output_channel_parallel"]),
                        int(conv["pixel_parallel"]), Limit.parse(conv["kernel"]),
                        Limit.parse(conv["stride"]), tuple(conv["nonlinear"]),
                        _bank(conv["weight_bank"])),  # type: ignore[arg-type]
        alu=None if alu is None else AluEngine(
            int(alu["channel_parallel"]), int(alu["pixel_parallel"]), tuple(alu["types"]),
            Limit.parse(alu["kernel"]), Limit.parse(alu["stride"]),
            {side: Limit.parse(text) for side, text in alu["pad"].items()},
            tuple(alu["nonlinear"]), _bank(alu.get("weight_bank"))),
        pool=None if pool is None else PoolEngine(
            int(pool["channel_parallel"]), tuple(pool["types"]),
            Limit.parse(pool["avg_kernel"]), Limit.parse(pool["avg_stride"]),
            Limit.parse(pool["max_kernel"]), Limit.parse(pool["max_stride"]),
            bool(pool.get("avg_square", False))),
        dwconv=None if dw is None else DwconvEngine(
            int(dw["channel_parallel"]), Limit.parse(dw["kernel"]), Limit.parse(dw["stride"]),
            tuple(dw["nonlinear"]), _bank(dw.get("weight_bank"))),
        eltwise=None if el is None else EltwiseEngine(
            int(el["channel_parallel"]), tuple(el["types"]), tuple(el["nonlinear"])),
        restrictions=tuple(entry.get("restrictions", ())),
        boards=entry.get("boards", ""),
        source=entry.get("source", ""),
    )


def _bits(value: int, mask: int, shift: int) -> int:
    return (value & mask) >> shift


def _decode_family(fingerprint: int, name: str | None) -> DpuTarget | None:
    """Engines of a DPUCZDX8G ISA1 / DPUCVDX8G ISA3 fingerprint, decoded the way the target
    factory's create_target_*.cpp does; None if the fingerprint is not of these families or
    its ARCH index is out of the family's table."""
    db = _database()
    codes = {k: v for k, v in db["type_codes"].items() if not k.startswith("_")}
    type_by_code = {v: k for k, v in codes.items()}
    dpu_type = type_by_code.get(fingerprint >> 56)
    isa = _bits(fingerprint, 0x00FF000000000000, 48)
    family = db["families"].get(f"{dpu_type}_{isa}")
    if family is None:
        return None
    arch = fingerprint & 0xF
    if arch >= len(family["pixel_parallel"]):
        return None
    pp = family["pixel_parallel"][arch]
    icp = family["input_channel_parallel"][arch]
    ocp = family["output_channel_parallel"][arch]
    batch = _bits(fingerprint, 0xF0, 4)
    alu_pp = _bits(fingerprint, 0xF00, 8)
    rdepth = _bits(fingerprint, 0xF000, 12)
    cv_leaky = _bits(fingerprint, 0x10000000, 28)
    dw_leaky = _bits(fingerprint, 0x20000000, 29)
    depth_log2 = family["weight_bank_depth_log2"]
    bank_depth = 1 << depth_log2[rdepth if len(depth_log2) > 1 else 0]
    bank_num = ocp if family["weight_bank_num"] == "output_channel_parallel" \
        else int(family["weight_bank_num"])
    conv_nonlinear = ["relu"]
    if cv_leaky:
        conv_nonlinear.append("leaky_relu")
        if family["conv_hswish_with_leaky"]:
            conv_nonlinear += ["hsigmoid", "hswish"]
    conv_nonlinear.append("relu6")
    alu_nonlinear = ["relu"] + (["leaky_relu"] if dw_leaky else []) + ["relu6"]
    if name is None:
        if dpu_type == "DPUCZDX8G":
            name = f"DPUCZDX8G_ISA{isa}_B{pp * icp * ocp * 2}_{fingerprint:016X}"
        else:
            name = f"{dpu_type}_ISA{isa}_C{ocp}B{batch}_{fingerprint:016X}"
    alu_types = ("dwconv", "prelu", "avg_pool", "max_pool", "leaky_relu", "max_reduce",
                 "dwconv_no_bias", "hsigmoid", "w16b0")
    return DpuTarget(
        name=name,
        type=dpu_type,
        isa_version=isa,
        feature_code=fingerprint & 0x0000FFFFFFFFFFFF,
        type_code=fingerprint >> 56,
        load_channel_parallel=icp,
        conv=ConvEngine(icp, ocp, pp, Limit.parse(family["conv_kernel"]),
                        Limit.parse(family["conv_stride"]), tuple(conv_nonlinear),
                        Bank(bank_num, icp, bank_depth)),
        alu=AluEngine(icp, alu_pp, alu_types, Limit.parse(family["alu_kernel"]),
                      Limit.parse(family["alu_stride"]),
                      {side: Limit.parse(t) for side, t in family["alu_pad"].items()},
                      tuple(alu_nonlinear), Bank(1, icp, bank_depth)),
        eltwise=EltwiseEngine(icp, ("add", "mult"), ("relu",)),
        batch=max(batch, 1) if dpu_type != "DPUCZDX8G" else 1,
        boards=family["boards"],
        source=db["families"]["_source"],
    )


@lru_cache(maxsize=1)
def _registry() -> tuple[dict[str, DpuTarget], dict[int, DpuTarget]]:
    db = _database()
    codes = {k: v for k, v in db["type_codes"].items() if not k.startswith("_")}
    by_name: dict[str, DpuTarget] = {}
    for entry in db["targets"]:
        by_name[entry["name"]] = _target_from_entry(entry, codes)
    for name, fp_text in db["registered"].items():
        if name.startswith("_") or name in by_name:
            continue
        target = _decode_family(int(fp_text, 16), name)
        if target is None:
            raise RuntimeError(f"targets.json: registered target {name} ({fp_text}) is neither "
                               "an explicit target nor of a decodable family")
        by_name[name] = target
    for name, fp_text in db["registered"].items():
        if not name.startswith("_") and by_name[name].fingerprint != int(fp_text, 16):
            raise RuntimeError(f"targets.json: {name} has fingerprint "
                               f"{by_name[name].fingerprint_hex}, registered as {fp_text}")
    by_fp = {t.fingerprint: t for t in by_name.values()}
    return by_name, by_fp


def known_targets() -> dict[str, str]:
    """Registered target names -> fingerprint (hex), sorted by name."""
    by_name, _ = _registry()
    return {name: by_name[name].fingerprint_hex for name in sorted(by_name)}


def _unknown(value: object, what: str) -> Exception:
    known = ", ".join(f"{n} ({fp})" for n, fp in known_targets().items())
    return error("UNKNOWN_TARGET", value=value, what=what, known=known)


def get_target(name_or_fingerprint: str | int | DpuTarget) -> DpuTarget:
    """The target for a registered name (case-insensitive), a fingerprint (int or "0x..."
    string), or a `DpuTarget` (returned as is). Unknown -> catalogued UNKNOWN_TARGET error
    listing the known names with their fingerprints."""
    if isinstance(name_or_fingerprint, DpuTarget):
        return name_or_fingerprint
    by_name, by_fp = _registry()
    if isinstance(name_or_fingerprint, bool) or not isinstance(name_or_fingerprint, (str, int)):
        raise _unknown(name_or_fingerprint, "target")
    if isinstance(name_or_fingerprint, str):
        text = name_or_fingerprint.strip()
        if not text.lower().startswith("0x"):
            for name, target in by_name.items():
                if name.lower() == text.lower():
                    return target
            raise _unknown(name_or_fingerprint, "target name")
        try:
            fingerprint = int(text, 16)
        except ValueError:
            raise _unknown(name_or_fingerprint, "fingerprint") from None
    else:
        fingerprint = name_or_fingerprint
    if fingerprint in by_fp:
        return by_fp[fingerprint]
    decoded = _decode_family(fingerprint, None) if 0 <= fingerprint < (1 << 64) else None
    if decoded is None:
        raise _unknown(name_or_fingerprint, "fingerprint")
    return decoded
