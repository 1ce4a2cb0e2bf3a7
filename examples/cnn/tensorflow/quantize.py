"""Post-training quantization of the Keras DigitsNet (the PyTorch example's network and weights):

    python quantize.py --quant_mode float
    python quantize.py --quant_mode calib --subset_len 500
    python quantize.py --quant_mode test
    python quantize.py --quant_mode test --subset_len 1 --batch_size 1 --deploy

The same steps and options as `../quantize.py` (the user guide's flow), with `tf_quantizer`:
calib writes quantize_result/quant_info.json (+ bias_corr.npz), test prints the 8-bit accuracy,
--deploy writes DigitsNet_int.xmodel, DigitsNet_int.onnx and deploy_check_data_int/DigitsNet/.
`--config_file`, `--target` and `--bitwidth` as in the PyTorch example.
"""
from __future__ import annotations

import numpy as np

from model import MODEL_FILE, digits  # also puts examples/cnn on sys.path

from digits_cli import parse_args


def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    hits = 0
    for i in range(0, len(y), batch_size):
        hits += int((np.asarray(model(x[i:i + batch_size])).argmax(1) == y[i:i + batch_size]).sum())
    return 100.0 * hits / len(y)


def main() -> None:
    args = parse_args(lambda parser: parser.add_argument("--model_path", default=str(MODEL_FILE)))

    import tensorflow as tf

    from tf_nndct.quantization.api import tf_quantizer

    x, y = digits("train" if args.quant_mode == "calib" else "test")
    if args.subset_len:
        x, y = x[:args.subset_len], y[:args.subset_len]
    if args.quant_mode == "float":
        import keras

        quant_model = keras.saving.load_model(args.model_path, compile=False)
    else:
        quantizer = tf_quantizer(args.model_path, tf.TensorSpec((1, 8, 8, 1), tf.float32), args.quant_mode,
                                 args.output_dir, bitwidth=args.bitwidth, quant_config_file=args.config_file,
                                 target=args.target)
        quant_model = quantizer.quant_model
    print(f"accuracy ({args.quant_mode}): {evaluate(quant_model, x, y, args.batch_size):.2f}%")
    if args.quant_mode == "calib":
        quantizer.export_quant_config()
    if args.deploy:
        quantizer.export_onnx_model(args.output_dir)
        quantizer.export_xmodel(args.output_dir, deploy_check=True)


if __name__ == "__main__":
    main()
