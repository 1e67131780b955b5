"""`FrozenModel`: a trained classifier's weights as NumPy arrays.

The export reads a Keras model once, here, into plain arrays: everything the
TFLite graph needs and nothing Keras-specific, so that the graph can be built
and converted in a child process from a file (`save` / `load`).
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np

from keras_seqrnn import classifier_forward
from keras_seqrnn import recurrence
from keras_seqrnn.quantization_aware_classifier import (
    QuantizationAwareClassifier,
)
from keras_seqrnn.highway_stacked_rnn import HighwayStackedRNN
from keras_seqrnn.sequence_classifier import SequenceClassifier
from keras_seqrnn.weight_shared_rnn_cell import WeightSharedRNNCell

_LAYER_FIELDS = recurrence.LayerWeights._fields
# Layers a Sequential model may hold around the recurrent layer; dropout is
# the identity at inference.
_PASS_THROUGH = (keras.layers.Dropout, keras.layers.InputLayer)


class UnsupportedModelError(ValueError):
    """The model is not built from keras_seqrnn layers the export reads."""


@dataclasses.dataclass(frozen=True)
class FrozenModel:
    """A classifier `standardize -> stacked RNN -> pooling -> Dense -> softmax`.

    Attributes:
        num_features: features per step, N.
        layers: each stacked layer's `recurrence.LayerWeights` of float32
            arrays, bottom first.
        activation: the candidates' activation, a Keras activation name.
        head_kernel: `(pooled features, num_classes)`, V.
        head_bias: `(num_classes,)`, B.
        input_scale: None or `(N,)`: steps become `x * scale + shift`.
        input_shift: None or `(N,)`.
        label_names: None or the class names.
        ranges: for a quantization-aware model, tensor name to `(min, max,
            narrow_range)` of its learned int8 range (see
            `classifier_forward.classifier_logits`); else None.
        backward_layers: None, or the layers of a second stack that reads
            the sequences backwards, like `layers`.
        pooling: `"last"`, `"mean"` or `"last_mean"`, as in
            `SequenceClassifier`.
        frame_length: how many consecutive steps one recurrent step reads,
            as in `SequenceClassifier`.
    """

    num_features: int
    layers: tuple
    activation: str
    head_kernel: np.ndarray
    head_bias: np.ndarray
    input_scale: np.ndarray | None = None
    input_shift: np.ndarray | None = None
    label_names: tuple | None = None
    ranges: dict | None = None
    backward_layers: tuple | None = None
    pooling: str = "last"
    frame_length: int = 1

    @property
    def num_classes(self) -> int:
        return int(self.head_kernel.shape[-1])

    def non_finite_weights(self) -> list[str]:
        """The names of the weight arrays holding NaN or infinity."""
        return [
            name
            for name, value in self._weights().items()
            if not np.all(np.isfinite(value))
        ]

    def save(self, path: str | pathlib.Path) -> None:
        arrays = self._weights()
        arrays["header"] = np.frombuffer(
            json.dumps(self._header()).encode(), dtype=np.uint8
        )
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def _weights(self):
        arrays = {"head_kernel": self.head_kernel, "head_bias": self.head_bias}
        if self.input_scale is not None:
            arrays["input_scale"] = self.input_scale
            arrays["input_shift"] = self.input_shift
        for prefix, layers in (
            ("", self.layers),
            (classifier_forward.BACKWARD, self.backward_layers or ()),
        ):
            for i, layer in enumerate(layers):
                for field, value in zip(_LAYER_FIELDS, layer):
                    if value is not None:
                        arrays[f"{prefix}layer{i}/{field}"] = value
        return arrays

    def _header(self):
        return {
            "num_features": self.num_features,
            "num_layers": len(self.layers),
            "bidirectional": self.backward_layers is not None,
            "pooling": self.pooling,
            "frame_length": self.frame_length,
            "activation": self.activation,
            "label_names": self.label_names,
            "ranges": self.ranges,
        }

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "FrozenModel":
        with np.load(path) as arrays:
            header = json.loads(arrays["header"].tobytes())

            def layers(prefix):
                return tuple(
                    recurrence.LayerWeights(
                        *(
                            arrays.get(f"{prefix}layer{i}/{field}")
                            for field in _LAYER_FIELDS
                        )
                    )
                    for i in range(header["num_layers"])
                )

            label_names = header["label_names"]
            return cls(
                num_features=header["num_features"],
                layers=layers(""),
                backward_layers=(
                    layers(classifier_forward.BACKWARD)
                    if header["bidirectional"]
                    else None
                ),
                pooling=header["pooling"],
                frame_length=header["frame_length"],
                activation=header["activation"],
                head_kernel=arrays["head_kernel"],
                head_bias=arrays["head_bias"],
                input_scale=arrays.get("input_scale"),
                input_shift=arrays.get("input_shift"),
                label_names=None if label_names is None else tuple(label_names),
                ranges=header.get("ranges"),
            )


def freeze(model: keras.Model) -> FrozenModel:
    """Reads a trained classifier's weights.

    Args:
        model: a built `keras_seqrnn.SequenceClassifier`, or a
            `keras.Sequential` of, in order: `Masking(mask_value=0.0)`,
            optional
            `Normalization`, one `HighwayStackedRNN` or
            `keras.layers.RNN(WeightSharedRNNCell)` returning its last output,
            and a `Dense` layer with a softmax activation (or a linear one
            followed by `Softmax`); `Dropout` layers may appear anywhere.

    Returns:
        A `FrozenModel`.

    Raises:
        UnsupportedModelError: the model is of another kind, or holds a
            layer the export cannot express (named in the message).
    """
    if isinstance(model, SequenceClassifier):
        return _freeze_classifier(model)
    if isinstance(model, keras.Sequential):
        return _freeze_sequential(model)
    raise UnsupportedModelError(
        "Expected a keras_seqrnn.SequenceClassifier or a keras.Sequential of "
        f"keras_seqrnn layers, got {type(model).__name__} {model.name!r}."
    )


def _freeze_classifier(model):
    if not model.built:
        raise UnsupportedModelError(
            f"Model {model.name!r} is not built; call it on data or build it "
            "before exporting."
        )
    scale = shift = None
    if model.standardization is not None:
        scale, shift = _standardization(model.standardization)
    frozen = _frozen(
        model.num_features,
        model.rnn,
        model.head,
        scale,
        shift,
        model.label_names,
    )
    frozen = dataclasses.replace(
        frozen, pooling=model.pooling, frame_length=model.frame_length
    )
    if model.backward_rnn is not None:
        frozen = dataclasses.replace(
            frozen, backward_layers=_layers(model.backward_rnn)
        )
    if isinstance(model, QuantizationAwareClassifier):
        frozen = dataclasses.replace(
            frozen, ranges=model.quantization_ranges()
        )
    return frozen


def _freeze_sequential(model):
    layers = [
        layer for layer in model.layers if not isinstance(layer, _PASS_THROUGH)
    ]
    masking = layers[0] if layers else None
    if not isinstance(masking, keras.layers.Masking) or float(
        masking.mask_value
    ):
        raise UnsupportedModelError(
            f"Model {model.name!r} must start with Masking(mask_value=0.0): "
            "the export masks padding from each sequence's length, which "
            "matches Keras only when Keras masks the zero padding too."
        )
    layers = layers[1:]
    scale = shift = None
    if isinstance(layers[:1] and layers[0], keras.layers.Normalization):
        scale, shift = _standardization(layers.pop(0))
    head_activation = "softmax"
    if len(layers) == 3 and isinstance(layers[2], keras.layers.Softmax):
        layers, head_activation = layers[:2], "linear"
    rnn, head = (layers + [None, None])[:2]
    supported = (
        len(layers) == 2
        and _is_recurrent(rnn)
        and isinstance(head, keras.layers.Dense)
        and keras.activations.serialize(head.activation) == head_activation
    )
    if not supported:
        names = ", ".join(
            f"{layer.name} ({type(layer).__name__})" for layer in layers
        )
        raise UnsupportedModelError(
            f"Cannot export the layers [{names}] of model {model.name!r}: "
            "expected Masking, [Normalization], HighwayStackedRNN or "
            "RNN(WeightSharedRNNCell) without return_sequences/return_state, "
            "then Dense(activation='softmax'), or a linear Dense and Softmax."
        )
    features = int(model.inputs[0].shape[-1]) if model.inputs else None
    if features is None:
        raise UnsupportedModelError(
            f"Model {model.name!r} has no input shape; build it first."
        )
    return _frozen(features, rnn, head, scale, shift, None)


def _is_recurrent(layer):
    if isinstance(layer, HighwayStackedRNN):
        return not (layer.return_sequences or layer.return_state)
    return (
        isinstance(layer, keras.layers.RNN)
        and isinstance(layer.cell, WeightSharedRNNCell)
        and not (
            layer.return_sequences
            or layer.return_state
            or layer.go_backwards
            or layer.stateful
        )
    )


def _standardization(layer):
    scale, shift = classifier_forward.standardization_affine(layer)
    return _array(scale), _array(shift)


def _layers(rnn):
    if isinstance(rnn, HighwayStackedRNN):
        layers = [rnn.layer_weights(i) for i in range(rnn.num_layers)]
    else:
        layers = [rnn.cell.layer_weights()]
    return tuple(
        recurrence.LayerWeights(*(_array(value) for value in layer))
        for layer in layers
    )


def _frozen(features, rnn, head, scale, shift, label_names):
    cell = rnn if isinstance(rnn, HighwayStackedRNN) else rnn.cell
    return FrozenModel(
        num_features=int(features),
        layers=_layers(rnn),
        activation=keras.activations.serialize(cell.activation),
        head_kernel=_array(head.kernel),
        head_bias=(
            _array(head.bias)
            if head.use_bias
            else np.zeros(head.units, np.float32)
        ),
        input_scale=scale,
        input_shift=shift,
        label_names=None if label_names is None else tuple(label_names),
    )


def _array(value):
    if value is None:
        return None
    return np.asarray(keras.ops.convert_to_numpy(value), np.float32)
