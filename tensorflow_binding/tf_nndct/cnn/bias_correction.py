"""Bias correction of the Keras CNN flow (config `include_bias_corr`), on the captured graph.

The PyTorch flow's algorithm (`pytorch_nndct.optim.bias_correction`), on the NumPy datapath:
after calibration, for each layer the session plans (`CnnQuantSession.bias_correction_nodes`:
conv / Dense with a bias and quantized weights, in topological order), the per-channel mean of
(quantized output - float output) over the graph inputs kept from the first calibration samples
is subtracted from its bias; the quantized side uses the final fix positions and the biases
already corrected upstream, the float side the original params and no quantization. The bias's
fix position is then re-derived, so quant_info.json records that of the corrected bias. The
graph is walked once, float and quantized side by side (`correct_biases`), with the results of
recomputing it up to each node bit for bit; a corrected node's quantized products are computed
once for the old and the new bias. benchmarks/keras_cnn.py times it: 1.88x the calibration pass
on its small residual CNN (15.7x when every node was recomputed), 2.22x at the worst point of
its `--grid`.

The corrections are written to `output_dir/bias_corr.npz` in the layout of the PyTorch flow's
bias_corr.pth (vai_q_pytorch 3.x's): {node name: per-output-channel corrections}, the deployed
bias being the float bias minus the correction (NumPy's format, so a TensorFlow-only install
reads it), staged together with quant_info.json (whose `bias_corrected` says so); test mode
applies it to the float biases (missing: NO_CALIB_RESULT; foreign: CNN_PARAM_FILE).
"""
from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nndct_shared.algorithms import BiasCorrection, ChannelMeanError, corrected_bias
from nndct_shared.cnn.session import CnnQuantSession
from nndct_shared.cnn.settings import make_observer
from nndct_shared.cnn.walk_memory import walk_fits
from nndct_shared.cnn_export import kernels as K
from nndct_shared.graph import Tensor
from nndct_shared.graph.ops import find_op
from nndct_shared.messages import error
from nndct_shared.progress import progress

from .runtime import GraphRunner, QuantRuntime, fixed_runtime

__all__ = ["BIAS_CORR_FILE", "BiasCorrection", "correct_biases", "load_bias_corrections", "npz_bytes"]

#: The corrected-bias file in output_dir.
BIAS_CORR_FILE = "bias_corr.npz"


def _weighted_params(session: CnnQuantSession) -> dict[str, np.ndarray]:
    """{tensor name: data} of the weight and bias of every node the algorithms adjust."""
    return {t.name: t.data for node in session.graph for role, t in node.params.items()
            if role in ("weight", "bias")}


def _channel_axis(op_type: str) -> int:
    """The output's channel axis: 1, the last axis for a linear layer (the registry op's
    `bias_axis`, as in the PyTorch flow)."""
    return find_op(op_type).bias_axis


def mean_output_error(runner: GraphRunner, node: str, batches: Sequence[Mapping[str, np.ndarray]],
                      quantized: QuantRuntime, originals: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per-channel mean of (quantized - float) output of `node` over `batches` (graph inputs)."""
    nodes = runner.upto(node)
    acc = ChannelMeanError(channel_axis=_channel_axis(nodes[-1].op_type))
    tensor = nodes[-1].outputs[0]
    for feeds in batches:
        y_float = runner.run(nodes, {}, None, feeds, originals)[tensor]
        y_quant = runner.run(nodes, {}, quantized, feeds)[tensor]
        acc.update(y_quant, y_float)
    return acc.mean()


def _new_bias(session: CnnQuantSession, runtime: QuantRuntime, fix_pos: dict, name: str,
              before: np.ndarray) -> None:
    """Subtract the error from the node's bias and re-derive the bias's fix position (in
    `fix_pos` and in the calibration runtime's observer, which export_quant_config reads)."""
    node = session.graph.node(name)
    bias = node.params["bias"]
    new_bias = corrected_bias(bias.data, before)
    node.params["bias"] = Tensor(bias.name, data=new_bias, attrs=dict(bias.attrs))
    settings = runtime.settings.get(bias.name)
    if settings is not None and fix_pos.get(bias.name) is not None:
        observer = make_observer(settings)
        observer.observe(new_bias)
        runtime.replace_observer(bias.name, observer)
        fix_pos[bias.name] = observer.fix_pos


def correct_biases(session: CnnQuantSession, runtime: QuantRuntime,
                   batches: Sequence[Mapping[str, np.ndarray]]) -> tuple[list[BiasCorrection], dict[str, np.ndarray]]:
    """Correct the biases of the captured graph in place after calibration; returns the results
    and {node name: corrections} (see the module docstring).

    One pass over the graph, node by node, float and quantized side by side for every batch (as
    the PyTorch flow's `LayerWalk`): at a planned node the float outputs and the quantized
    inputs, with every node before it already corrected, give the error; the node is then
    corrected and its quantized outputs made again for the nodes after it, from the same
    bias-free products (the op's `products`, which its reference completes with the bias). The results are those
    of recomputing the graph up to each node (`_correct_biases_by_recomputing`, also taken when
    the walk's values would not fit in memory, `walk_fits`), bit for bit."""
    fix_pos = dict(runtime.calibrated())  # first: it names NaN/inf calibration data
    if not batches:
        raise error("NO_CALIBRATION", action="bias correction")
    samples = sum(int(next(iter(feeds.values())).shape[0]) for feeds in batches)
    if not walk_fits(session.graph, samples):
        return _correct_biases_by_recomputing(session, runtime, batches, fix_pos)
    runner = GraphRunner(session.graph)
    originals = dict(_weighted_params(session))
    planned = set(session.bias_correction_nodes())
    quantized = fixed_runtime(runtime.settings, fix_pos)
    floats: list[dict[str, np.ndarray]] = [{} for _ in batches]
    quants: list[dict[str, np.ndarray]] = [{} for _ in batches]
    readers = Counter(t for node in runner.order for t in node.inputs)
    results: list[BiasCorrection] = []
    corrected: dict[str, np.ndarray] = {}

    def error_of(node) -> np.ndarray:
        acc = ChannelMeanError(channel_axis=_channel_axis(node.op_type))
        for f, q in zip(floats, quants):
            acc.update(q[node.outputs[0]], f[node.outputs[0]])
        return acc.mean()

    for node in progress(runner.order, desc="Bias correction", unit="node"):
        for feeds, f in zip(batches, floats):
            runner.run([node], f, None, feeds, originals)
        if node.name not in planned:
            for feeds, q in zip(batches, quants):
                runner.run([node], q, quantized, feeds)
        else:
            # the quantized products once; the outputs for the old and the corrected bias from
            # them, as the op's reference computes them (`kernels.add_bias`)
            op = find_op(node.op_type)
            products = [op.products(runner.view(node, quantized), [q[t] for t in node.inputs]) for q in quants]

            def outputs() -> None:
                bias = runner.view(node, quantized).params["bias"].data
                for z, q in zip(products, quants):
                    q[node.outputs[0]] = quantized.output(node.name, K.add_bias(z, bias, op.bias_axis))

            outputs()
            before = error_of(node)
            _new_bias(session, runtime, fix_pos, node.name, before)
            quantized = fixed_runtime(runtime.settings, fix_pos)
            outputs()
            results.append(BiasCorrection(node.name, before, error_of(node)))
            corrected[node.name] = before
        for t in node.inputs:
            readers[t] -= 1
            if readers[t] == 0:
                for values in (*floats, *quants):
                    values.pop(t, None)
    return results, corrected


def _correct_biases_by_recomputing(session: CnnQuantSession, runtime: QuantRuntime,
                                   batches: Sequence[Mapping[str, np.ndarray]], fix_pos: dict,
                                   ) -> tuple[list[BiasCorrection], dict[str, np.ndarray]]:
    """The same correction, recomputing the graph from its inputs up to each planned node
    (memory: one batch at a time; time: about four forwards per node)."""
    runner = GraphRunner(session.graph)
    originals = dict(_weighted_params(session))
    results: list[BiasCorrection] = []
    corrected: dict[str, np.ndarray] = {}
    for name in progress(session.bias_correction_nodes(), desc="Bias correction", unit="layer"):
        before = mean_output_error(runner, name, batches, fixed_runtime(runtime.settings, fix_pos), originals)
        _new_bias(session, runtime, fix_pos, name, before)
        after = mean_output_error(runner, name, batches, fixed_runtime(runtime.settings, fix_pos), originals)
        results.append(BiasCorrection(name, before, after))
        corrected[name] = before
    return results, corrected


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes of an uncompressed .npz holding `arrays` in float64 (the corrections exactly as
    measured, as the PyTorch flow's bias_corr.pth keeps them; staged with the other files)."""
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()})
    return buffer.getvalue()


def load_bias_corrections(session: CnnQuantSession, output_dir: str | Path, data: bytes | None) -> list[str]:
    """Test mode: apply `output_dir/bias_corr.npz` to the captured graph's float biases (deployed
    bias = float bias - correction; call it once, on a fresh session); returns the node names.
    `data`: the file's bytes as read with quant_info.json from one version of output_dir
    (`CnnQuantSession.calib_data`), so that a concurrent export cannot pair this quant_info.json
    with another calibration's corrections; None: that version has no such file."""
    path = Path(output_dir) / BIAS_CORR_FILE
    if data is None:
        raise error("NO_CALIB_RESULT", path=str(path))

    def mismatch(problem: str) -> Exception:
        return error("CNN_PARAM_FILE", path=str(path), problem=problem)

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: np.array(npz[name], dtype=np.float64).reshape(-1) for name in npz.files}
    except Exception as exc:  # a truncated or foreign file: say which file, not a zip trace
        raise mismatch(f"it cannot be read as a .npz file ({type(exc).__name__}: {exc})") from None
    nodes = {node.name: node for node in session.graph if "bias" in node.params}
    for name, corrections in arrays.items():
        if name not in nodes:
            raise mismatch(f"the model has no layer '{name}' with a bias to correct")
        channels = nodes[name].params["bias"].data.size
        if corrections.size != channels or not np.isfinite(corrections).all():
            raise mismatch(f"'{name}' has {corrections.size} correction(s), its bias {channels} channel(s)"
                           if corrections.size != channels else f"the corrections of '{name}' are not finite")
    for name, corrections in arrays.items():
        old = nodes[name].params["bias"]
        nodes[name].params["bias"] = Tensor(old.name, data=corrected_bias(old.data, corrections),
                                            attrs=dict(old.attrs))
    return list(arrays)
