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
each sequence's length; a backward stack masks the padding it reads first.
A quantization-aware model's learned ranges become fake-quantization ops at
the same tensors, so its int8 conversion needs no calibration.

`stream_function` is one chunk of a stream (the `stream` signature): the
same forward pass from an explicit state, unrolled over the chunk's K steps
or a loop over any number.
"""

import functools
import tempfile

import keras
import numpy as np
import tensorflow as tf

from export.litert_model import CHUNK
from export.litert_model import COUNT
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
    forward = _forward(frozen, unroll)

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
    def serving_default(sequences, lengths):
        # The function's name is the signature's in a file of several.
        return {PROBABILITIES: tf.nn.softmax(forward(sequences, lengths))}

    return serving_default.get_concrete_function()


def stream_function(
    frozen,
    unroll: bool,
    batch_size: int | None = None,
    chunk_length: int | None = None,
) -> tf.types.experimental.ConcreteFunction:
    """One chunk of a stream as a concrete function, the `stream` signature.

    Args:
        frozen: a `FrozenModel` of a forward-only classifier.
        unroll: whether to unroll over the chunk (needs `chunk_length`).
        batch_size: None (any) or the static number of streams.
        chunk_length: None (any) or the static steps of a chunk, K.

    Returns:
        A concrete function of `chunk` float32 `(batch, K, features)`,
        `count` int32 `(batch,)` (the chunk's real steps per stream) and the
        state tensors (`classifier_forward.stream_state_shapes`: `h0`,
        ..., `last`, `mean`, `frames`), returning `probabilities` and the
        new state under the same names.
    """
    forward = _forward(frozen, unroll)
    shapes = classifier_forward.stream_state_shapes(
        [int(layer.recurrent_kernel.shape[-1]) for layer in frozen.layers],
        frozen.pooling,
    )
    specs = [
        tf.TensorSpec(
            [batch_size, chunk_length, frozen.num_features],
            tf.float32,
            name=CHUNK,
        ),
        tf.TensorSpec([batch_size], tf.int32, name=COUNT),
    ] + [
        tf.TensorSpec(
            [batch_size] + ([] if size is None else [size]), dtype, name=name
        )
        for name, (size, dtype) in shapes.items()
    ]

    @tf.function(input_signature=specs)
    def stream(chunk, count, *state):
        logits, new_state = forward(
            chunk, count, state=dict(zip(shapes, state))
        )
        return {PROBABILITIES: tf.nn.softmax(logits), **new_state}

    return stream.get_concrete_function()


def run_stream(function, chunk, count, state=None) -> tuple:
    """Calls a `stream_function` on NumPy arrays.

    Args:
        function: the concrete function.
        chunk: `(batch, steps, features)`.
        count: `(batch,)` int32.
        state: None (new streams) or the state it returned.

    Returns:
        `(probabilities, state)` as NumPy arrays.
    """
    specs = function.structured_input_signature[0][2:]
    if state is None:
        state = {
            spec.name: np.zeros(
                [len(chunk)] + spec.shape.as_list()[1:], spec.dtype.as_numpy_dtype
            )
            for spec in specs
        }
    outputs = function(
        tf.constant(chunk, tf.float32),
        tf.constant(count, tf.int32),
        *(tf.constant(state[spec.name]) for spec in specs),
    )
    outputs = {name: value.numpy() for name, value in outputs.items()}
    return outputs.pop(PROBABILITIES), outputs


def _forward(frozen, unroll):
    """`classifier_logits` on the frozen weights, as constants."""
    weights = _fused(frozen.layers)
    backward_weights = None
    if frozen.backward_layers is not None:
        backward_weights = _fused(frozen.backward_layers)
    quantize = None
    if frozen.ranges:
        quantize = functools.partial(_fake_quant, frozen.ranges)
    return functools.partial(
        classifier_forward.classifier_logits,
        weights=weights,
        activation=keras.activations.get(frozen.activation),
        head_kernel=tf.constant(frozen.head_kernel),
        head_bias=tf.constant(frozen.head_bias),
        input_scale=frozen.input_scale,
        input_shift=frozen.input_shift,
        unroll=unroll,
        quantize=quantize,
        backward_weights=backward_weights,
        pooling=frozen.pooling,
        frame_length=frozen.frame_length,
    )


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
    functions,
    quantization: str | None,
    representative_data=None,
    int8_io: bool = False,
) -> bytes:
    """Converts concrete functions to a TFLite flatbuffer, one signature each.

    Args:
        functions: signature name to concrete function: a
            `classifier_function` as `"serving_default"` and/or a
            `stream_function` as `"stream"`.
        quantization: None (float32), `"float16"`, `"dynamic"` (int8
            weights, float activations) or `"int8"` (full integer).
        representative_data: for `"int8"`, an iterable of `(signature,
            inputs)`: a signature name and a dict of its inputs, such as
            `("serving_default", {"sequences": ..., "lengths": ...})`.
        int8_io: for `"int8"`, whether `sequences` and `probabilities` are
            int8 too (else float32 at the model's edge).

    Returns:
        The model's bytes.
    """
    with tempfile.TemporaryDirectory(prefix="seqrnn-graph-") as folder:
        converter = _converter(functions, folder)
        return _convert(
            converter, len(functions), quantization, representative_data, int8_io
        )


def _converter(functions, folder):
    module = tf.Module()
    module.functions = list(functions.values())
    if len(functions) > 1 or SIGNATURE in functions:
        # Several functions get their (Python) names as signature keys;
        # a lone one is always "serving_default".
        return tf.lite.TFLiteConverter.from_concrete_functions(
            list(functions.values()), module
        )
    # A lone function keeps another name only through a SavedModel.
    tf.saved_model.save(module, folder, signatures=functions)
    return tf.lite.TFLiteConverter.from_saved_model(
        folder, signature_keys=list(functions)
    )


def _convert(converter, count, quantization, representative_data, int8_io):
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
            samples = list(representative_data)
            several = count > 1

            def dataset():
                for signature, inputs in samples:
                    yield (signature, inputs) if several else inputs

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
