"""The TFLite graph of a `FrozenModel`, and its conversion.

The graph is the layers' own step math (`keras_seqrnn.recurrence`) on the
frozen weights as constants, so it holds only builtin ops:

- a loop (`tf.while_loop` carrying only the states: TFLite `WHILE`) for any
  batch size and length, or
- unrolled over a static length (`tf.unstack`: TFLite `UNPACK`), which the GPU
  delegate and full-integer quantization need.

Padding needs no masking: the steps run unmasked and the top layer's output
at each sequence's last step is picked with arithmetic (`_last_outputs`),
which full-integer quantization accepts.
"""

import keras
import numpy as np
import tensorflow as tf

from export.litert_model import LENGTHS
from export.litert_model import PROBABILITIES
from export.litert_model import SEQUENCES
from export.litert_model import SIGNATURE
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
        y = _last_outputs(x, lengths, weights, activation, unroll)
        logits = tf.matmul(y, head_kernel) + head_bias
        return {PROBABILITIES: tf.nn.softmax(logits)}

    return classify.get_concrete_function()


def _last_outputs(x, lengths, weights, activation, unroll):
    """The top layer's output at each sequence's last real step.

    The layers are causal, so the output at step `length - 1` is the same
    whatever padding follows: the steps run unmasked, and the output is
    picked as `selected + w_t * (y_t - selected)`, with `w_t` 1 at the first
    and the last real step. That is 3 ops a step instead of 6 per layer for
    masking `h` and `y`. Taking step 0 first keeps `selected` from being all
    zeros for the first steps, a range full-integer calibration cannot
    quantize; sequences of length 0 are zeroed at the end, the zero state
    that the masked layers give.
    """
    projected = recurrence.project_inputs(x, weights[0])
    steps = x.shape[1] if unroll else tf.shape(x)[1]
    positions = tf.range(steps)[None, :]
    # t * (length - 1 - t) == 0 picks both steps in int32 arithmetic: the
    # GPU delegate rejects LOGICAL_OR, and float MAXIMUM of 0/1 tensors
    # breaks full-integer quantization.
    pick = tf.equal(positions * (lengths[:, None] - 1 - positions), 0)
    pick = tf.expand_dims(tf.cast(pick, x.dtype), -1)
    nonempty = tf.expand_dims(tf.cast(tf.minimum(lengths, 1), x.dtype), -1)
    batch = tf.shape(x)[0]
    dtype = x.dtype
    states = [tf.zeros(tf.stack([batch, w.units]), dtype) for w in weights]
    selected = tf.zeros(tf.stack([batch, weights[-1].units]), dtype)

    def advance(projected_t, pick_t, states, selected):
        new_states = []
        layer_input = projected_t
        for i, layer_weights in enumerate(weights):
            if i > 0:
                layer_input = recurrence.project_inputs(y, layer_weights)
            h, y = recurrence.step(
                layer_input, states[i], None, layer_weights, activation
            )
            new_states.append(h)
        return new_states, selected + pick_t * (y - selected)

    if unroll:
        for projected_t, pick_t in zip(
            tf.unstack(projected, axis=1), tf.unstack(pick, axis=1)
        ):
            states, selected = advance(projected_t, pick_t, states, selected)
        return selected * nonempty

    projected = tf.transpose(projected, [1, 0, 2])
    pick = tf.transpose(pick, [1, 0, 2])

    def body(t, states, selected):
        return (t + 1, *advance(projected[t], pick[t], states, selected))

    _, _, selected = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), states, selected),
        maximum_iterations=steps,
    )
    return selected * nonempty


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
