"""The calib -> test flow of the user guide, as the tests run it."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from nndct_shared.quant_info_v3 import read_record
from pytorch_nndct.apis import torch_quantizer


def calibrate(model, x_calib: torch.Tensor, out: Path, batch: int = 100, **kwargs):
    quantizer = torch_quantizer("calib", model, x_calib[:batch], output_dir=str(out), device=torch.device("cpu"),
                                **kwargs)
    with torch.no_grad():
        for i in range(0, len(x_calib), batch):
            quantizer.quant_model(x_calib[i:i + batch])
    quantizer.export_quant_config()
    return quantizer


def test_quantizer(model, x: torch.Tensor, out: Path, **kwargs):
    return torch_quantizer("test", model, x[:1], output_dir=str(out), device=torch.device("cpu"), **kwargs)


test_quantizer.__test__ = False  # not a pytest test


def plain_config(directory: Path, bit_width: int = 8) -> str:
    """A config file with the guide's defaults but cross-layer equalization and bias correction
    off: plain post-training quantization, whose fix positions and outputs the tests derive
    independently from the float weights."""
    from nndct_shared.config import default_config

    data = default_config(bit_width, "DPU" if bit_width == 8 else "CPU").to_dict()
    data["include_cle"] = data["include_bias_corr"] = False
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"plain_ptq_config_{bit_width}bit.json"
    path.write_text(json.dumps(data))
    return str(path)


def quant_info(directory: Path) -> dict[str, dict[str, tuple[int, int | None]]]:
    """The sections of `directory`'s quant_info.json ({name: (bit_width, fix_pos)}; the 3.x
    file holds one [bit_width, fix_pos] pair per entry)."""
    return dict(read_record(Path(directory) / "quant_info.json").info.sections())


def by_traced(quantizer) -> dict[str, str]:
    """{traced name: nndct name} of a quantizer's nodes (the names quant_info.json, the runtime
    and the exports use are the nndct ones, `<Model>::nndct_<op>_<index>`)."""
    return {traced: name for name, traced in quantizer.captured.traced_names.items()}


ORT_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_ALL")


def ort_sessions(ort, model):
    """{name: session} for `model` (a path or serialized bytes): the default session (no options,
    what a user writes) and one per graph optimization level."""
    source = model if isinstance(model, bytes) else str(model)
    sessions = {"default": ort.InferenceSession(source)}
    for level in ORT_LEVELS:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        sessions[level] = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return sessions
