"""Quantize the example's PyTorch GRU classifier to 16- or 8-bit fixed point (RNN quantizer flow).

The LSTM example's flow (examples/lstm/quantize_flow.py) on the same JapaneseVowels data:

  python examples/gru/pytorch/quantize_gru.py --quant_mode calib --subset_len 200
  python examples/gru/pytorch/quantize_gru.py --quant_mode test  --subset_len 200 [--deploy] [--bitwidth 8]

calib: evaluates the float model, wraps it with `torch_quantizer(..., lstm=True)` (which
       replaces the nn.GRU by a QuantGRU), runs the first N test sequences through the
       quantized model (which calibrates the fix positions) and writes <output_dir>/quant_info.json.
test:  reads quant_info.json, evaluates the quantized model and writes
       <output_dir>/xmodel/Gru_StandardGruCell_layer_0_forward_int.xmodel (plus the deploy-check
       dumps with --deploy).
float: evaluates the float model only.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parents[1] / "lstm"):  # gru_model.py lives here, the flow in examples/lstm
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from gru_model import GruClassifier  # noqa: E402
from quantize_flow import parse_example_args, run_torch_example  # noqa: E402

DEFAULT_CHECKPOINT = HERE / "pretrained.pth"


def parse_args(argv: list[str] | None = None):
    return parse_example_args(__doc__.splitlines()[0], "torch", DEFAULT_CHECKPOINT,
                              "python examples/gru/train_gru.py", argv)


def load_float_model(checkpoint: Path) -> GruClassifier:
    """The shipped float model; weights_only=True because a state_dict needs no pickled code."""
    state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
    three_h, input_size = state_dict["gru.weight_ih_l0"].shape
    model = GruClassifier(input_size=input_size, hidden_size=three_h // 3,
                          num_classes=state_dict["classifier.weight"].shape[0])
    model.load_state_dict(state_dict)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    return run_torch_example(parse_args(argv), load_float_model)


if __name__ == "__main__":
    raise SystemExit(main())
