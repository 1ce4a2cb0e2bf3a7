"""Post-training quantization of DigitsNet, the way the user guide's resnet18_quant.py does it.

    python quantize.py --quant_mode float
    python quantize.py --quant_mode calib --subset_len 500
    python quantize.py --quant_mode test
    python quantize.py --quant_mode test --subset_len 1 --batch_size 1 --deploy

Options as in the guide's example: `--fast_finetune` (calib: AdaQuant on the calibration subset,
test: load its parameters), `--config_file` (a JSON quantization config), `--target` (a DPU name
for hardware-aware quantization, e.g. DPUCZDX8G_ISA1_B4096), `--bitwidth`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from digits_cli import parse_args
from digits_net import DigitsNet, digits
from pytorch_nndct.apis import torch_quantizer

HERE = Path(__file__).parent


def evaluate(model, x, y, batch_size):
    model.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            hits += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return 100.0 * hits / len(y)


def main() -> None:
    def own(parser):
        parser.add_argument("--checkpoint", default=str(HERE / "checkpoints" / "digits_net.pth"))
        parser.add_argument("--fast_finetune", action="store_true")

    args = parse_args(own)

    model = DigitsNet()
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    x, y = digits("train" if args.quant_mode == "calib" else "test")
    if args.subset_len:
        x, y = x[:args.subset_len], y[:args.subset_len]
    if args.quant_mode == "float":
        quant_model = model
    else:
        rand_input = torch.randn([args.batch_size, 1, 8, 8])
        quantizer = torch_quantizer(args.quant_mode, model, (rand_input), output_dir=args.output_dir,
                                    bitwidth=args.bitwidth, device=torch.device("cpu"),
                                    quant_config_file=args.config_file, target=args.target)
        quant_model = quantizer.quant_model
        if args.fast_finetune and args.quant_mode == "calib":
            quantizer.fast_finetune(evaluate, (quant_model, x, y, args.batch_size))
        elif args.fast_finetune:
            quantizer.load_ft_param()
    print(f"accuracy ({args.quant_mode}): {evaluate(quant_model, x, y, args.batch_size):.2f}%")
    if args.quant_mode == "calib":
        quantizer.export_quant_config()
    if args.deploy:
        quantizer.export_torch_script(args.output_dir)
        quantizer.export_onnx_model(args.output_dir)
        quantizer.export_xmodel(args.output_dir, deploy_check=True)


if __name__ == "__main__":
    main()
