"""Public API of the PyTorch front end, with the reference's names and signatures.

`torch_quantizer(quant_mode, module, ..., lstm=True)` quantizes every `nn.LSTM` of a model to
16- or 8-bit fixed point, bit-exact with the Vitis AI RNN quantizer, and every `nn.GRU` to the
StandardGruCell built by the same rules. With `lstm=False` (the
default) the CNN flow captures the whole model (torch.fx) and quantizes it to power-of-two fixed
point for DPU-style hardware (`qproc/cnn.py`), with cross-layer equalization, bias correction,
fast finetuning and hardware-aware quantization (`target=`). `Inspector` assigns a float model's
ops to a DPU target or the CPU; QAT is `pytorch_nndct.QatProcessor`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from nndct_shared.messages import error, warn
from nndct_shared.quant_mode import parse_quant_mode

from .distributed import apply_calib_feedback, check_calib_feedback
from .inspector import Inspector
from .qproc.cnn import TorchQuantizer
from .qproc.lstm import LstmTorchQuantizer
from .utils.device import resolve_device

_last_quantizer: "LstmTorchQuantizer | TorchQuantizer | None" = None


def _load_state_dict(module: nn.Module, state_dict_file: str | os.PathLike | None) -> None:
    if state_dict_file is None:
        return
    path = Path(state_dict_file)
    if not path.is_file():
        raise error("STATE_DICT_MISSING", path=str(path))

    def invalid(reason: str) -> Exception:
        return error("STATE_DICT_INVALID", path=str(path), module=type(module).__name__, reason=reason)

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises pickle, zip and RuntimeErrors for a bad file
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise invalid(f"it cannot be read with torch.load(weights_only=True) ({type(exc).__name__}: "
                      f"{first_line})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise invalid(f"it holds a {type(state).__name__}, not a dict of tensors")
    # Checked before loading: load_state_dict copies the matching entries before it reports
    # the others, which would leave the user's model half overwritten.
    own = module.state_dict()
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    resized = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    problems = [f"{label} {', '.join(repr(k) for k in keys[:5])}{' ...' if len(keys) > 5 else ''}"
                for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                    ("keys of another shape", resized)) if keys]
    if problems:
        raise invalid("; ".join(problems))
    module.load_state_dict(state)


def _plain_module(module: object) -> nn.Module:
    """The float model to quantize, as the guide documents it: a `torch.nn.DataParallel`
    wrapper is removed with the DATA_PARALLEL warning ("Data parallel is not supported. The
    wrapper 'torch.nn.DataParallel' has been removed"), a `torch.jit.script` model is refused
    with TRACED_NOT_SUPPORT (it has no Python forward to capture), anything else that is not an
    nn.Module with MODULE_TYPE."""
    if isinstance(module, torch.jit.ScriptModule):
        raise error("TRACED_NOT_SUPPORT", module=getattr(module, "original_name", type(module).__name__))
    if isinstance(module, nn.DataParallel):
        warn("DATA_PARALLEL")
        return _plain_module(module.module)
    if not isinstance(module, nn.Module):
        raise error("MODULE_TYPE", got=type(module).__name__)
    return module


def torch_quantizer(quant_mode, module, input_args=None, state_dict_file=None,
                    output_dir: str = "quantize_result", bitwidth: int = 8, mix_bit: bool = False,
                    device=torch.device("cuda"), lstm: bool = False, app_deploy: str = "CV",
                    qat_proc: bool = False, custom_quant_ops=None, quant_config_file=None,
                    target=None, calib_feedback: str | None = None) -> "LstmTorchQuantizer | TorchQuantizer":
    """Creates the quantizer of `module` in mode 'calib' or 'test'.

    With `lstm=True` every `nn.LSTM` and `nn.GRU` is replaced by a quantized one (the rest of the
    model stays float) at `bitwidth` bits (16 for the RNN hardware; 8 is supported);
    `quant_config_file` then sets per-tensor widths (README "Mixed bit widths in the recurrent
    flow"). `input_args`, `mix_bit` and `app_deploy` are ignored in LSTM mode, as in the
    reference. In the CNN flow `mix_bit=True` keeps weights and bias at `bitwidth` and quantizes
    inputs and activations at 16 bits (`nndct_shared.config.api_config`). A
    `torch.nn.DataParallel` model is unwrapped (warning DATA_PARALLEL); a `torch.jit.script`
    model is refused (TRACED_NOT_SUPPORT). Computation runs on the CPU; tensors on another
    device are moved to the CPU and back.

    `calib_feedback` (an extension; see README "Calibrating on several processes"): "running",
    the reference's calibration, where each batch is fake-quantized at the statistics of every
    batch so far (the default in one process), or "batch", where each batch is fake-quantized at
    its own statistics, so that calibrations on several processes (torch.distributed, where it
    is the default) merge into exactly one process's result.
    """
    global _last_quantizer
    mode = parse_quant_mode(quant_mode)
    module = _plain_module(module)
    if isinstance(bitwidth, bool) or not isinstance(bitwidth, int) or not 2 <= bitwidth <= 16:
        raise error("ILLEGAL_BITWIDTH", value=bitwidth, path="bitwidth", low=2, high=16)
    resolved = resolve_device(device)
    check_calib_feedback(calib_feedback)
    _load_state_dict(module, state_dict_file)
    if not lstm:
        for argument, given in {"qat_proc": qat_proc, "custom_quant_ops": custom_quant_ops}.items():
            if given:
                raise NotImplementedError(f"torch_quantizer({argument}=...) is not implemented in the CNN flow.")
        _last_quantizer = TorchQuantizer(mode, module, input_args, output_dir, bitwidth, resolved,
                                         quant_config_file, target, mix_bit=bool(mix_bit))
        apply_calib_feedback(_last_quantizer, calib_feedback)
        return _last_quantizer
    ignored = {"mix_bit": mix_bit, "input_args": input_args is not None,
               "target": target, "qat_proc": qat_proc, "custom_quant_ops": custom_quant_ops}
    for argument, given in ignored.items():
        if given:
            warn("LSTM_ARG_IGNORED", argument=argument)
    _last_quantizer = LstmTorchQuantizer(mode, module, output_dir, bitwidth, quant_config_file)
    apply_calib_feedback(_last_quantizer, calib_feedback)
    return _last_quantizer


def dump_xmodel(output_dir: str = "quantize_result", deploy_check: bool = False):
    """Legacy module-level export: `export_xmodel` of the most recent test-mode quantizer."""
    if _last_quantizer is None:
        raise error("NO_FORWARD", action="dump_xmodel() (no torch_quantizer was created)")
    return _last_quantizer.export_xmodel(output_dir, deploy_check)


__all__ = ["torch_quantizer", "dump_xmodel", "Inspector"]
