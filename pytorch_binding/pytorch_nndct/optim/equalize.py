"""Cross-layer equalization of a `TorchQuantizer`: the graph is equalized by the neutral
`nndct_shared.cnn.cle` (as the quantizer's config says), then the new weights (and ReLU6 clip
levels) are copied into the converted torch model."""
from __future__ import annotations

from typing import Any

import torch

from nndct_shared.cnn.cle import ClePair, equalize_graph

__all__ = ["equalize_quantizer"]


def equalize_quantizer(quantizer: Any) -> list[ClePair]:
    """Equalize `quantizer.graph` and copy the new weights into `quantizer.quant_model`.

    Call it right after the quantizer is built, before any forward (in calib mode params are
    calibrated on their first use); calib and test mode must both call it, so that test mode
    quantizes the same equalized weights that calibration saw. The pairs are those the session
    equalizes (layers with quantized weights; `cle_extensions` from the config).
    """
    pairs = equalize_graph(quantizer.graph, eligible=quantizer.session.quantized_weight_nodes(),
                           extensions=quantizer.config.cle_extensions)
    touched = {name for pair in pairs for name in (pair.first, pair.second, *pair.between)}
    with torch.no_grad():
        for module in quantizer.quant_model.children():
            if getattr(module, "node_name", None) not in touched:
                continue
            node = quantizer.graph.node(module.node_name)
            for role in ("weight", "bias"):
                value = getattr(module, role, None)
                if value is not None and role in node.params:
                    value.copy_(torch.from_numpy(node.params[role].data).to(value))
            if "clip" in node.attrs and hasattr(module, "clip"):
                module.clip = torch.tensor(node.attrs["clip"], dtype=torch.float32)
    return pairs
