"""Quantization-aware training: `quantize_aware` and its classifier.

(`export.quantize_aware` is this function; the class lives in the package
of the layers so that `.keras` files of it load wherever `keras_seqrnn` is
imported.)

A recurrence quantized after training loses accuracy: the int8 state feeds
back every step. Training with the quantization in the loop lets the weights
adapt to it and learns one range per tensor for all steps. The model here
runs the export's own forward pass (`classifier_forward.classifier_logits`),
with
tensorflow-model-optimization's quantizers faking int8 on every weight
(`LastValueQuantizer`) and on the result of every op (`MovingAverageQuantizer`,
one range per tensor, shared by all time steps), so `to_tflite(...,
quantization="int8")` puts the learned ranges at the same places and needs no
representative data.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from keras_seqrnn import data
from keras_seqrnn.sequence_classifier import SequenceClassifier

# A probe of this many steps meets every named tensor of the forward pass.
_PROBE_STEPS = 2


class _WeightFactory:
    """What tfmot quantizers take as `layer`: their `build` calls
    `add_weight(name, ...)` positionally and needs TF variables."""

    def __init__(self, layer):
        self.layer = layer

    def add_weight(self, name, shape=None, initializer=None, trainable=False):
        return self.layer.add_weight(
            name=name,
            shape=() if shape is None else shape,
            initializer=initializer,
            trainable=trainable,
        ).value


class TfmotQuantizer:
    """A tfmot quantizer with its range variables, owned by a Keras layer.

    Args:
        quantizer: a `tfmot.quantization.keras.quantizers.Quantizer`.
        layer: the Keras layer (or model) that owns the range variables.
        name: the tensor's name; the variables are `{name}_min` and
            `{name}_max`.
        shape: the tensor's shape.
    """

    def __init__(self, quantizer, layer, name, shape):
        self.quantizer = quantizer
        self.variables = (
            quantizer.build(
                tf.TensorShape(shape),
                name.replace("/", "_"),
                _WeightFactory(layer),
            )
            or {}
        )

    def __call__(self, tensor, training):
        return self.quantizer(tensor, training, weights=self.variables)

    @property
    def range(self) -> tuple[float, float, bool]:
        """`(min, max, narrow_range)` as the converter needs them."""
        if not self.variables:  # a FixedQuantizer
            low, high = self.quantizer.init_min, self.quantizer.init_max
        else:
            low = self.variables["min_var"].numpy()
            high = self.variables["max_var"].numpy()
        return float(low), float(high), bool(self.quantizer.narrow_range)

    @property
    def learned(self) -> bool:
        return bool(self.variables)


@keras.saving.register_keras_serializable(package="keras_seqrnn")
class QuantizationAwareClassifier(SequenceClassifier):
    """A `SequenceClassifier` trained with int8 faked everywhere.

    Built by `export.quantize_aware` from a trained classifier; it takes the
    same arguments, trains with the same step (`fit`, clipping, masked loss)
    and saves as `.keras` with its learned ranges. Its forward pass is the
    export's (`classifier_forward.classifier_logits`): the forward stack runs
    unmasked and its outputs are pooled from each sequence's length, which
    comes from its padding as in `SequenceClassifier`.

    Weights are quantized per tensor, symmetric, narrow range
    (`LastValueQuantizer`); every op's result per tensor, asymmetric, with
    moving-average ranges (`MovingAverageQuantizer`), except the sigmoid
    and tanh outputs, whose ranges TFLite fixes (`FixedQuantizer`). Dropout and input
    noise are off: the model exists to fine-tune a trained one.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if getattr(self, "_quantizers", None) is not None:
            return
        shapes = {}

        def probe(name, tensor):
            shapes[name] = tensor.shape
            return tensor

        steps = _PROBE_STEPS * self.frame_length
        sequences = tf.zeros((1, steps, self.num_features))
        self._forward(sequences, tf.constant([steps]), probe)
        self._quantizers = {
            name: TfmotQuantizer(self._quantizer_for(name), self, name, shape)
            for name, shape in shapes.items()
        }

    def _quantizer_for(self, name):
        # Imported here: tfmot imports tf_keras (Keras 2), which every
        # process would otherwise load for QAT alone.
        from tensorflow_model_optimization.quantization.keras import quantizers

        if name.endswith("kernel"):
            return quantizers.LastValueQuantizer(
                num_bits=8, per_axis=False, symmetric=True, narrow_range=True
            )
        # TFLite's int8 LOGISTIC and TANH have fixed output scales (1/256
        # from 0, 1/128 around 0); another range there costs a
        # requantization op every step.
        if name.split("/")[-1] in ("transform", "carry"):
            return quantizers.FixedQuantizer(8, 0.0, 255 / 256, False)
        # The one-hot of the last step and the mask of the real ones: [0, 1]
        # holds both values exactly.
        if name in ("pick", "valid", "step_valid"):
            return quantizers.FixedQuantizer(8, 0.0, 1.0, False)
        tanh = keras.activations.serialize(self.rnn.activation) == "tanh"
        if tanh and name.endswith("candidate"):
            return quantizers.FixedQuantizer(8, -1.0, 127 / 128, False)
        return quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False
        )

    def compute_logits(self, inputs, training=False):
        sequences, lengths = self._zero_padded(inputs)
        return self._forward(
            sequences, lengths, functools.partial(self._quantize, training)
        )

    def _quantize(self, training, name, tensor):
        return self._quantizers[name](tensor, training)

    def stream(self, chunk, state=None, reset=None):
        raise TypeError(
            f"Model {self.name!r} is quantization-aware: its ranges were "
            "learned on whole sequences. Stream the float model it was "
            "made from."
        )

    def quantization_ranges(self) -> dict:
        """Tensor name to its learned `(min, max, narrow_range)`."""
        return {name: q.range for name, q in self._quantizers.items()}


def quantize_aware(
    model: SequenceClassifier, calibration_data=None
) -> QuantizationAwareClassifier:
    """A copy of a trained classifier for quantization-aware fine-tuning.

    Every tensor that is int8 in the `target="mobile"` int8 export passes
    through a fake-quantization op whose range is learned while the copy
    trains; compile and `fit` it for a few epochs, then export it with
    `to_tflite(..., target="mobile", quantization="int8")`, which needs no
    representative data.

    Args:
        model: a trained `keras_seqrnn.SequenceClassifier`.
        calibration_data: None, padded sequences `(batch, time,
            features)` or a list of `(time, features)` arrays: the
            activation ranges start at the min and max seen on them, rather
            than at tfmot's [-6, 6], which moving averages leave slowly.
            They are read in chunks of 256, so any number will do.

    Returns:
        A built `QuantizationAwareClassifier` with the model's weights,
        not compiled.

    Raises:
        TypeError: the model is not a `SequenceClassifier`, or is already
            quantization-aware.
    """
    if isinstance(model, QuantizationAwareClassifier):
        raise TypeError(
            f"Model {model.name!r} is already quantization-aware; fine-tune "
            "it further with fit, or export it."
        )
    if not isinstance(model, SequenceClassifier):
        raise TypeError(
            "quantize_aware takes a trained keras_seqrnn.SequenceClassifier, "
            f"got {type(model).__name__} {getattr(model, 'name', '')!r}."
        )
    if not model.built:
        raise TypeError(f"Model {model.name!r} is not built: train it first.")
    config = model.get_config()
    config.update(name=f"{model.name}_qat", dropout=0.0, input_noise=0.0)
    config["recurrent_dropout"] = 0.0
    qat = QuantizationAwareClassifier.from_config(config)
    qat.build((None, None, model.num_features))
    for target, source in (
        (qat.rnn, model.rnn),
        (qat.backward_rnn, model.backward_rnn),
        (qat.head, model.head),
        (qat.standardization, model.standardization),
    ):
        if source is not None:
            target.set_weights(source.get_weights())
    if calibration_data is not None:
        _calibrate(qat, calibration_data)
    return qat


def _calibrate(model, sequences, chunk=256):
    observed = {}

    def observe(name, tensor):
        low = tf.reduce_min(tensor)
        high = tf.reduce_max(tensor)
        if name in observed:
            low = tf.minimum(low, observed[name][0])
            high = tf.maximum(high, observed[name][1])
        observed[name] = (low, high)
        return tensor

    for start in range(0, len(sequences), chunk):
        part = sequences[start : start + chunk]
        if not isinstance(part, np.ndarray):
            part, _ = data.pad(part)
        model._forward(*model._zero_padded(np.asarray(part, np.float32)), observe)
    for name, quantizer in model._quantizers.items():
        if name.endswith("kernel") or not quantizer.learned:
            continue
        low, high = (float(v) for v in observed[name])
        # The converter needs 0 inside every range.
        quantizer.variables["min_var"].assign(min(low, 0.0))
        quantizer.variables["max_var"].assign(max(high, 0.0))
