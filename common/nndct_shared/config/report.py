"""What a front end tells the user about a config once it knows the model.

`report_config(config, layer_types, aliases)` is called after the model is captured:

- the DPU listing note (DPU_ACTIVATION_ROUND): the config's DPU activations said std_round and
  are rounded half_up (see `dpu_rounding`);
- QUANT_CONFIG_LAYER_UNMATCHED for every ``layer_quantize_config`` entry that selects no layer
  of the model (the reference silently ignored them, so a typo in a layer name went unnoticed):
  a by-name entry lists the model's layer names, a by-type entry the model's layer types, so
  the right one can be copied. A layer also answers to its aliases (the CNN flow's nodes are
  named `<Model>::nndct_<op>_<index>`, and a config may give the name the front end traced, as
  older releases wrote it: `cnn.settings.config_layer_name`); the list shows the layer names.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..messages import note, warn
from .dpu_rounding import listing_rounding_paths

if TYPE_CHECKING:
    from .schema import QuantConfig

__all__ = ["MAX_LISTED", "report_config", "unmatched_layer_entries"]

#: Names listed in one warning; the rest are counted.
MAX_LISTED = 30


def _listing(items: list[str]) -> str:
    shown = ", ".join(repr(item) for item in items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f", ... ({more} more)" if more > 0 else "") if items else "(none)"


def unmatched_layer_entries(config: QuantConfig, layer_types: Mapping[str, str],
                            aliases: Mapping[str, str] | None = None) -> list[int]:
    """Indices of the layer entries that select none of the layers {name: layer type}
    (`aliases`: {layer name: another name it is selected by})."""
    aliases = aliases or {}
    unmatched = []
    for index, layer in enumerate(config.layer_quantize_config):
        if not any(layer.matches_name(name) or layer.matches_type(kind)
                   or (name in aliases and layer.matches_name(aliases[name]))
                   for name, kind in layer_types.items()):
            unmatched.append(index)
    return unmatched


def report_config(config: QuantConfig, layer_types: Mapping[str, str],
                  aliases: Mapping[str, str] | None = None) -> None:
    """Emit the notes and warnings of the module docstring for a model's {layer name: type}."""
    paths = listing_rounding_paths(config)
    if paths:
        note("DPU_ACTIVATION_ROUND", paths=", ".join(f"'{p}'" for p in paths))
    for index in unmatched_layer_entries(config, layer_types, aliases):
        layer = config.layer_quantize_config[index]
        if layer.layer_name is not None:
            what, field, names = "layer names", "layer_name", list(layer_types)
        else:
            what, field = "layer types", "layer_type"
            names = sorted(set(layer_types.values()))
        warn("QUANT_CONFIG_LAYER_UNMATCHED", index=index, selector=layer.selector, what=what,
             field=field, names=_listing(names))
