"""Config files that switch the post-training steps (CLE, bias correction) on or off over the
default config of a bit width (DPU at 8 bits, CPU otherwise), for the optim tests."""
from __future__ import annotations

import json
from pathlib import Path

from nndct_shared.config import default_config


def step_config(out: Path, cle: bool, bias_corr: bool, bit_width: int = 8) -> str:
    """Write `out/config.json` and return its path."""
    data = default_config(bit_width, "DPU" if bit_width == 8 else "CPU").to_dict()
    data["include_cle"], data["include_bias_corr"] = cle, bias_corr
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.json"
    path.write_text(json.dumps(data))
    return str(path)
