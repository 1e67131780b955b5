"""The TFLite graph of a `FrozenModel`, and its conversion.

The graph is `keras_seqrnn.classifier_forward.classifier_logits`, the
layers' own step math (`keras_seqrnn.recurrence`), on the frozen weights as
constants, so it holds only builtin ops:

- a loop (`tf.while_loop` carrying only the states: TFLite `WHILE`) for any
  batch size and length, or
- unrolled over a static length (`tf.unstack`: TFLite `UNPACK`), which the GPU
  delegate and full-integer quantization need.

Padding is handled with arithmetic, which full-integer quantization accepts:
the forward stack runs unmasked and its outputs are picked and summed from
each sequence's length; a backward stack masks the padding it reads first. A quantization-aware model's learned ranges become
fake-quantization ops at the same tensors, so its int8 conversion needs no
calibration.
"""

import functools

import keras
import numpy as np
import tensorflow as tf

from export.litert_model import LENGTHS
from export.litert_model import PROBABILITIES
from export.litert_model import SEQUENCES
from export.litert_model import SIGNATURE
from keras_seqrnn import classifier_forward
from keras_seqrnn import recurrence


def classifier_function(
    frozen,
    unroll: bool,
    batch_size: int | None = None,
    max_length: int | None = None,
) -> tf.types.experimental.ConcreteFunction:
    """The classifier as a concrete function of `(sequences, lengths)`.

    Args:
        frozen: a `FrozenModel`.
        unroll: whether to unroll over time (needs `max_length`).
        batch_size: None (any) or the static batch size.
        max_length: None (any) or the static number of time steps.

    Returns:
        A concrete function mapping `sequences` float32 `(batch, time,
        features)` and `lengths` int32 `(batch,)` to `{"probabilities":
        (batch, classes)}`.
    """
    weights = _fused(frozen.layers)
    backward_weights = None
    if frozen.backward_layers is not None:
        backward_weights = _fused(frozen.backward_layers)
    activation = keras.activations.get(frozen.activation)
    head_kernel = tf.constant(frozen.head_kernel)
    head_bias = tf.constant(frozen.head_bias)

    @tf.function(
        input_signature=[
            tf.TensorSpec(
                [batch_size, max_length, frozen.num_features],
                tf.float32,
                name=SEQUENCES,
            ),
            tf.TensorSpec([batch_size], tf.int32, name=LENGTHS),
        ]
    )
    def classify(sequences, lengths):
        logits = classifier_forward.classifier_logits(
            sequences,
            lengths,
            weights,
            activation,
            head_kernel,
            head_bias,
            frozen.input_scale,
            frozen.input_shift,
            unroll=unroll,
            quantize=quantize,
            backward_weights=backward_weights,
            pooling=frozen.pooling,
            frame_length=frozen.frame_length,
        )
        return {PROBABILITIES: tf.nn.softmax(logits)}

    quantize = None
    if frozen.ranges:
        quantize = functools.partial(_fake_quant, frozen.ranges)
    return classify.get_concrete_function()


def _fused(layers):
    return [
        recurrence.fuse_weights(
            recurrence.LayerWeights(
                *(None if a is None else tf.constant(a) for a in layer)
            )
        )
        for layer in layers
    ]


def _fake_quant(ranges, name, tensor):
    low, high, narrow_range = ranges[name]
    return tf.quantization.fake_quant_with_min_max_args(
        tensor, low, high, num_bits=8, narrow_range=bool(narrow_range)
    )


def convert(
    function,
    quantization: str | None,
    representative_data=None,
    int8_io: bool = False,
) -> bytes:
    """Converts a `classifier_function` to a TFLite flatbuffer.

    Args:
        function: the concrete function.
        quantization: None (float32), `"float16"`, `"dynamic"` (int8
            weights, float activations) or `"int8"` (full integer).
        representative_data: for `"int8"`, an iterable of
            `(sequences, lengths)` batches the function accepts.
        int8_io: for `"int8"`, whether `sequences` and `probabilities` are
            int8 too (else float32 at the model's edge).

    Returns:
        The model's bytes.
    """
    module = tf.Module()
    module.classify = function
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function], module
    )
    # Builtin ops only: a model that would need Flex fails here, not on the
    # phone.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        # Without representative data the graph's fake-quantization ops
        # give every range (a quantization-aware model).
        if representative_data is not None:
            batches = list(representative_data)

            def dataset():
                for sequences, lengths in batches:
                    yield {
                        SEQUENCES: np.asarray(sequences, np.float32),
                        LENGTHS: np.asarray(lengths, np.int32),
                    }

            converter.representative_dataset = dataset
            # Not for quantization-aware graphs: TF 2.21 then demands a
            # representative dataset before it looks for fake-quant ops.
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            ]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()
