"""The TFLite graph of a `FrozenModel`, and its conversion.

The graph is the layers' own step math (`keras_seqrnn.recurrence`) on the
frozen weights as constants, so it holds only builtin ops:

- a loop (`tf.while_loop` carrying only the states: TFLite `WHILE`) for any
  batch size and length, or
- unrolled over a static length (`tf.unstack`: TFLite `UNPACK`), which the GPU
  delegate and full-integer quantization need.

Padding is masked from `lengths` with arithmetic, `h + m * (h_new - h)`, so
that full-integer quantization accepts it.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_seqrnn import recurrence

SIGNATURE = "serving_default"
SEQUENCES = "sequences"
LENGTHS = "lengths"
PROBABILITIES = "probabilities"


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
    weights = [
        recurrence.fuse_weights(
            recurrence.LayerWeights(
                *(None if a is None else tf.constant(a) for a in layer)
            )
        )
        for layer in frozen.layers
    ]
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
        x = sequences
        if frozen.input_scale is not None:
            x = x * frozen.input_scale + frozen.input_shift
        steps = max_length if max_length is not None else tf.shape(x)[1]
        mask = tf.cast(tf.range(steps)[None, :] < lengths[:, None], x.dtype)
        _, _, y = recurrence.run_stack(
            x, weights, activation, mask=mask, unroll=unroll
        )
        logits = tf.matmul(y, head_kernel) + head_bias
        return {PROBABILITIES: tf.nn.softmax(logits)}

    return classify.get_concrete_function()


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
        batches = list(representative_data)

        def dataset():
            for sequences, lengths in batches:
                yield {
                    SEQUENCES: np.asarray(sequences, np.float32),
                    LENGTHS: np.asarray(lengths, np.int32),
                }

        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()
