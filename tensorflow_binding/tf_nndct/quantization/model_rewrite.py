"""Find the LSTM layers of a Keras model and rebuild the model around their quantized twins.

Why clone rather than patch: the user's float model must stay usable and unchanged (they
evaluate it next to the quantized one), so the quantized model is `keras.models.clone_model`
of it in which every `LSTM` / `Bidirectional(LSTM)` becomes a `QuantLSTM` and every other
layer is the *same* layer object (Embedding, Conv1D, Dense... run float with the user's
weights, without copying them).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import keras

from nndct_shared.lstm.naming import prefix_from_module_path
from nndct_shared.lstm.stack import QuantizedLstmStack
from nndct_shared.messages import error, note, warn_once

from ..layers.quant_lstm import MERGE_MODES, QuantLSTM, RnnLayout, keras_cell_weights

_FLOAT_RNNS = (keras.layers.GRU, keras.layers.SimpleRNN)


def walk_layers(model: keras.Model, path: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """Every layer with its dotted path (`outer_model.lstm`), nested models included."""
    for layer in model.layers:
        layer_path = f"{path}.{layer.name}" if path else layer.name
        yield layer_path, layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, layer_path)


def is_quantizable_rnn(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.Bidirectional):
        return isinstance(layer.forward_layer, keras.layers.LSTM)
    return isinstance(layer, keras.layers.LSTM)


def _activation_name(fn) -> str:
    return getattr(fn, "__name__", repr(fn))


def check_lstm(path: str, lstm: keras.layers.LSTM) -> None:
    """Everything the StandardLstmCell cannot express is refused with its catalogued error."""
    if _activation_name(lstm.cell.recurrent_activation) != "sigmoid":
        raise error("RECURRENT_ACTIVATION", layer=path, which="recurrent_activation",
                    got=_activation_name(lstm.cell.recurrent_activation), expected="sigmoid")
    if _activation_name(lstm.cell.activation) != "tanh":
        raise error("RECURRENT_ACTIVATION", layer=path, which="activation",
                    got=_activation_name(lstm.cell.activation), expected="tanh")
    if lstm.stateful:
        raise error("UNSUPPORTED_RNN", module=path, feature="stateful=True")
    if lstm.cell.dropout or lstm.cell.recurrent_dropout:
        note(f"LSTM layer '{path}' has dropout={lstm.cell.dropout}, recurrent_dropout="
             f"{lstm.cell.recurrent_dropout}; the quantized model is an inference model, so dropout "
             "is not applied.")


def quantized_layer(path: str, layer: keras.layers.Layer, bit_width: int) -> QuantLSTM:
    """The `QuantLSTM` of one `LSTM` or `Bidirectional(LSTM)` layer (same name)."""
    prefix = prefix_from_module_path(path, type(layer).__name__)
    if isinstance(layer, keras.layers.Bidirectional):
        fw, bw = layer.forward_layer, layer.backward_layer
        if not isinstance(bw, keras.layers.LSTM) or fw.go_backwards or not bw.go_backwards:
            raise error("UNSUPPORTED_RNN", module=path,
                        feature="a Bidirectional wrapper whose halves are not a forward LSTM and a "
                                "go_backwards LSTM")
        if fw.units != bw.units:
            raise error("UNSUPPORTED_RNN", module=path,
                        feature=f"forward and backward halves of different sizes ({fw.units}, {bw.units})")
        if layer.merge_mode not in MERGE_MODES:
            raise error("UNSUPPORTED_RNN", module=path, feature=f"merge_mode={layer.merge_mode!r}")
        check_lstm(f"{path}.forward", fw)
        check_lstm(f"{path}.backward", bw)
        stack = QuantizedLstmStack(prefix, [[keras_cell_weights(fw), keras_cell_weights(bw)]], bit_width)
        layout = RnnLayout(fw.units, fw.return_sequences, fw.return_state, bidirectional=True,
                           merge_mode=layer.merge_mode)
    else:
        check_lstm(path, layer)
        stack = QuantizedLstmStack(prefix, [[keras_cell_weights(layer)]], bit_width,
                                   backward_only=layer.go_backwards)
        layout = RnnLayout(layer.units, layer.return_sequences, layer.return_state,
                           go_backwards=layer.go_backwards)
    return QuantLSTM(stack, layout, path, name=layer.name)


def check_no_masks(model: keras.Model) -> None:
    """Sequence masks (Embedding(mask_zero=True), Masking) would reach the LSTMs: the cell has
    no masked-step semantics, so refuse them up front rather than at the first call."""
    for path, layer in walk_layers(model):
        if isinstance(layer, keras.layers.Masking) or getattr(layer, "mask_zero", False):
            raise error("UNSUPPORTED_RNN", module=path,
                        feature="a sequence mask (Embedding(mask_zero=True) or Masking) feeding an LSTM")


def rebuild_with_quantized_lstms(model: keras.Model, bit_width: int) -> tuple[keras.Model, list[QuantLSTM]]:
    """The cloned model and its QuantLSTM layers in model order."""
    check_no_masks(model)
    paths = {id(layer): path for path, layer in walk_layers(model)}
    created: list[QuantLSTM] = []

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        path = paths.get(id(layer), layer.name)
        if is_quantizable_rnn(layer):
            qlayer = quantized_layer(path, layer, bit_width)
            created.append(qlayer)
            return qlayer
        if isinstance(layer, _FLOAT_RNNS) or (isinstance(layer, keras.layers.Bidirectional)):
            warn_once("FLOAT_OP", once_key=path, ops=f"{path} ({type(layer).__name__}: only LSTM layers are quantized)")
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
