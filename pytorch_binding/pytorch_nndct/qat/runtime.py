"""The trainable model of QAT: the converted model (`<Model>.py` of the CNN flow) with a
learnable TQT quantizer on every tensor the fix plan quantizes.

Why the converted model: it is exactly what the test-mode quantizer runs (same graph, same
node names, BatchNorm folded into the conv, activations fused as the DPU fuses them), so the
fix positions learned here are the ones the deployable model needs, tensor for tensor. Its
modules hand params and outputs to `quant_runtime` (`param()` / `output()`); here that runtime
is `QatQuantizers`, whose log2 thresholds are `nn.Parameter`s.

Each quantizer is initialised on the first forward pass that reaches it, from the tensor it
sees, with the flow's calibration observer (the same fix position PTQ would pick for that
batch); later layers see already-quantized inputs, as in calibration. Under torch.distributed
(DistributedDataParallel) that first pass is a collective: the observers of every rank's batch
are merged, so every rank starts from the same thresholds, and DDP's averaged gradients keep
them equal.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
from torch import nn

from nndct_shared.cnn.settings import TensorSettings, make_observer

from ..distributed import merge_observer
from .tqt import fix_pos_of, log2_threshold_for, tqt_fake_quant

__all__ = ["QatModel", "QatQuantizers"]


class QatQuantizers(nn.Module):
    """One learnable log2 threshold per quantized tensor (keys `q<i>`, names in `names`)."""

    def __init__(self, settings: Mapping[str, TensorSettings]) -> None:
        super().__init__()
        for s in settings.values():
            if s.axis is not None:
                raise NotImplementedError(f"QAT of per-channel quantized '{s.name}' is not implemented; "
                                          "QAT learns one fix position per tensor.")
        self.settings = dict(settings)
        self.names = list(settings)
        self._keys = {name: f"q{i}" for i, name in enumerate(self.names)}
        self._index = {name: i for i, name in enumerate(self.names)}
        self.log2_t = nn.ParameterDict({self._keys[n]: nn.Parameter(torch.zeros(())) for n in self.names})
        self.register_buffer("initialized", torch.zeros(len(self.names), dtype=torch.bool))
        self.last_outputs: dict[str, torch.Tensor] = {}

    # --- the runtime interface of the converted model's modules ----------------------------

    def output(self, name: str, y: torch.Tensor) -> torch.Tensor:
        if name in self.settings:
            y = self._quantize(name, y)
        self.last_outputs[name] = y.detach()
        return y

    def param(self, name: str, value: torch.Tensor) -> torch.Tensor:
        return self._quantize(name, value) if name in self.settings else value

    # --- quantization ----------------------------------------------------------------------

    def _quantize(self, name: str, x: torch.Tensor) -> torch.Tensor:
        s = self.settings[name]
        index = self._index[name]
        log2_t = self.log2_t[self._keys[name]]
        if not bool(self.initialized[index]):
            self._initialize(s, log2_t, x)
            self.initialized[index] = True
        return tqt_fake_quant(x, log2_t, s.bit_width, s.round_code, s.max_fix_pos)

    @staticmethod
    def _initialize(s: TensorSettings, log2_t: nn.Parameter, x: torch.Tensor) -> None:
        observer = make_observer(s)
        observer.observe(x.detach().to("cpu", torch.float32).numpy())
        observer = merge_observer(observer, s, f"the first forward pass of the QAT model ('{s.name}')")
        fix_pos = observer.fix_pos
        if fix_pos is None:  # all zeros: any position reproduces it; take the most precise
            fix_pos = s.max_fix_pos
        with torch.no_grad():
            log2_t.fill_(log2_threshold_for(int(fix_pos), s.bit_width))

    def start_from(self, fix_pos: Mapping[str, int]) -> None:
        """Start the named quantizers at these fix positions (e.g. a post-training
        calibration's) instead of initialising them on the first forward pass."""
        with torch.no_grad():
            for name, value in fix_pos.items():
                s = self.settings[name]
                self.threshold(name).fill_(log2_threshold_for(int(value), s.bit_width))
                self.initialized[self._index[name]] = True

    # --- results ---------------------------------------------------------------------------

    def threshold(self, name: str) -> nn.Parameter:
        """The learnable log2 threshold of tensor `name`."""
        return self.log2_t[self._keys[name]]

    def uninitialized(self) -> list[str]:
        """Tensors no forward pass has reached yet (they have no fix position)."""
        return [n for i, n in enumerate(self.names) if not bool(self.initialized[i])]

    def fix_positions(self) -> dict[str, int]:
        """The integer fix position of every initialised quantizer."""
        return {n: fix_pos_of(self.threshold(n), self.settings[n].bit_width, self.settings[n].max_fix_pos)
                for i, n in enumerate(self.names) if bool(self.initialized[i])}


class QatModel(nn.Module):
    """What `QatProcessor.trainable_model()` returns: train it like the float model.

    `net` is the converted model (its params are the float weights, BatchNorm folded, trained
    as is: BatchNorm statistics are frozen at their float values); `quantizers` holds the
    learnable thresholds. Use `quantizer_parameters()` and `non_quantizer_parameters()` for
    separate optimizer groups (the guide recommends a larger learning rate for the former).
    """

    def __init__(self, net: nn.Module, quantizers: QatQuantizers) -> None:
        super().__init__()
        self.net = net
        self.quantizers = quantizers
        for module in net.modules():
            if hasattr(module, "quant_runtime"):
                # not a submodule registration: the runtime is owned by this model once
                object.__setattr__(module, "quant_runtime", quantizers)

    def forward(self, *args: Any) -> Any:
        return self.net(*args)

    def quantizer_parameters(self) -> list[nn.Parameter]:
        """The learnable log2 thresholds."""
        return list(self.quantizers.parameters())

    def non_quantizer_parameters(self) -> list[nn.Parameter]:
        """The network's trainable weights and biases."""
        return [p for p in self.net.parameters() if p.requires_grad]

    def fix_positions(self) -> dict[str, int]:
        """Integer fix positions the learned thresholds stand for (tensor name -> fix_pos)."""
        return self.quantizers.fix_positions()

    def named_quantizers(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(tensor name, log2 threshold) of every quantized tensor."""
        for name in self.quantizers.names:
            yield name, self.quantizers.threshold(name)
