"""Find the LSTM and GRU layers of a Keras model and rebuild the model around their quantized
twins.

Why clone rather than patch: the user's float model must stay usable and unchanged (they
evaluate it next to the quantized one), so the quantized model is `keras.models.clone_model`
of it in which every `LSTM` / `Bidirectional(LSTM)` becomes a `QuantLSTM`, every `GRU` /
`Bidirectional(GRU)` a `QuantGRU`, and every other layer is the *same* layer object (Embedding,
Conv1D, Dense... run float with the user's weights, without copying them).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import keras

from nndct_shared.gru.stack import QuantizedGruStack
from nndct_shared.lstm.naming import prefix_from_module_path
from nndct_shared.lstm.stack import QuantizedLstmStack
from nndct_shared.messages import error, note, warn_once

from ..layers.quant_gru import QuantGRU, keras_gru_cell_weights
from ..layers.quant_lstm import QuantLSTM, keras_cell_weights
from ..layers.quant_rnn import MERGE_MODES, QuantRNN, RnnLayout

_FLOAT_RNNS = (keras.layers.SimpleRNN,)
_QUANTIZED_RNNS = (keras.layers.LSTM, keras.layers.GRU)


def walk_layers(model: keras.Model, path: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """Every layer with its dotted path (`outer_model.lstm`), nested models included."""
    for layer in model.layers:
        layer_path = f"{path}.{layer.name}" if path else layer.name
        yield layer_path, layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, layer_path)


def _rnn_of(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The RNN a layer is (its forward half for a Bidirectional wrapper)."""
    return layer.forward_layer if isinstance(layer, keras.layers.Bidirectional) else layer


def is_quantizable_rnn(layer: keras.layers.Layer) -> bool:
    return isinstance(_rnn_of(layer), _QUANTIZED_RNNS)


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", repr(fn))


def _check_activations(path: str, rnn, code: str) -> None:
    for which, expected in (("recurrent_activation", "sigmoid"), ("activation", "tanh")):
        got = _activation_name(getattr(rnn.cell, which))
        if got != expected:
            raise error(code, layer=path, which=which, got=got, expected=expected)


def check_rnn(path: str, rnn: keras.layers.LSTM | keras.layers.GRU) -> None:
    """Everything the StandardLstmCell / StandardGruCell cannot express is refused with its
    catalogued error."""
    is_gru = isinstance(rnn, keras.layers.GRU)
    _check_activations(path, rnn, "GRU_ACTIVATION" if is_gru else "RECURRENT_ACTIVATION")
    if rnn.stateful:
        raise error("UNSUPPORTED_GRU" if is_gru else "UNSUPPORTED_RNN", module=path, feature="stateful=True")
    if rnn.cell.dropout or rnn.cell.recurrent_dropout:
        note(f"{'GRU' if is_gru else 'LSTM'} layer '{path}' has dropout={rnn.cell.dropout}, recurrent_dropout="
             f"{rnn.cell.recurrent_dropout}; the quantized model is an inference model, so dropout is not applied.")


def _cell_weights(rnn):
    return keras_gru_cell_weights(rnn) if isinstance(rnn, keras.layers.GRU) else keras_cell_weights(rnn)


def quantized_layer(path: str, layer: keras.layers.Layer, bit_width: int) -> QuantRNN:
    """The `QuantLSTM` / `QuantGRU` of one `LSTM`, `GRU` or `Bidirectional` layer (same name)."""
    prefix = prefix_from_module_path(path, type(layer).__name__)
    rnn = _rnn_of(layer)
    is_gru = isinstance(rnn, keras.layers.GRU)
    kind, stack_cls, layer_cls = ("GRU", QuantizedGruStack, QuantGRU) if is_gru else \
        ("LSTM", QuantizedLstmStack, QuantLSTM)
    unsupported = "UNSUPPORTED_GRU" if is_gru else "UNSUPPORTED_RNN"
    if isinstance(layer, keras.layers.Bidirectional):
        fw, bw = layer.forward_layer, layer.backward_layer
        if not isinstance(bw, keras.layers.GRU if is_gru else keras.layers.LSTM) or fw.go_backwards \
                or not bw.go_backwards:
            raise error(unsupported, module=path,
                        feature=f"a Bidirectional wrapper whose halves are not a forward {kind} and a "
                                f"go_backwards {kind}")
        if fw.units != bw.units:
            raise error(unsupported, module=path,
                        feature=f"forward and backward halves of different sizes ({fw.units}, {bw.units})")
        if layer.merge_mode not in MERGE_MODES:
            raise error(unsupported, module=path, feature=f"merge_mode={layer.merge_mode!r}")
        check_rnn(f"{path}.forward", fw)
        check_rnn(f"{path}.backward", bw)
        stack = stack_cls(prefix, [[_cell_weights(fw), _cell_weights(bw)]], bit_width)
        layout = RnnLayout(fw.units, fw.return_sequences, fw.return_state, bidirectional=True,
                           merge_mode=layer.merge_mode)
    else:
        check_rnn(path, layer)
        stack = stack_cls(prefix, [[_cell_weights(layer)]], bit_width, backward_only=layer.go_backwards)
        layout = RnnLayout(layer.units, layer.return_sequences, layer.return_state,
                           go_backwards=layer.go_backwards)
    return layer_cls(stack, layout, path, name=layer.name)


def check_no_masks(model: keras.Model) -> None:
    """Sequence masks (Embedding(mask_zero=True), Masking) would reach the RNNs: the cells have
    no masked-step semantics, so refuse them up front rather than at the first call."""
    quantized = [layer for _, layer in walk_layers(model) if is_quantizable_rnn(layer)]
    has_lstm = any(isinstance(_rnn_of(layer), keras.layers.LSTM) for layer in quantized)
    for path, layer in walk_layers(model):
        if isinstance(layer, keras.layers.Masking) or getattr(layer, "mask_zero", False):
            raise error("UNSUPPORTED_RNN" if has_lstm else "UNSUPPORTED_GRU", module=path,
                        feature="a sequence mask (Embedding(mask_zero=True) or Masking) feeding an "
                                + ("LSTM" if has_lstm else "GRU"))


def rebuild_with_quantized_rnns(model: keras.Model, bit_width: int) -> tuple[keras.Model, list[QuantRNN]]:
    """The cloned model and its QuantLSTM / QuantGRU layers in model order."""
    check_no_masks(model)
    paths = {id(layer): path for path, layer in walk_layers(model)}
    created: list[QuantRNN] = []

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        path = paths.get(id(layer), layer.name)
        if is_quantizable_rnn(layer):
            qlayer = quantized_layer(path, layer, bit_width)
            created.append(qlayer)
            return qlayer
        if isinstance(_rnn_of(layer), _FLOAT_RNNS) or isinstance(layer, keras.layers.Bidirectional):
            warn_once("FLOAT_OP", once_key=path,
                      ops=f"{path} ({type(layer).__name__}: only LSTM and GRU layers are quantized)")
        return layer

    try:
        rebuilt = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except ValueError as exc:
        if "subclass" in str(exc).lower() or not _is_graph_model(model):
            raise error("MODULE_TYPE", got=f"{type(model).__name__} (a subclassed keras.Model; only "
                                           "functional and Sequential models can be rebuilt)") from exc
        raise
    return rebuilt, created


def _is_graph_model(model: keras.Model) -> bool:
    return isinstance(model, keras.Sequential) or type(model).__name__ == "Functional"


def count_quantizable(model: keras.Model, predicate: Callable[[keras.layers.Layer], bool] = is_quantizable_rnn) -> int:
    return sum(1 for _, layer in walk_layers(model) if predicate(layer))
