"""The classifier's forward pass for export and quantization-aware training.

The Keras layers mask padded steps (`recurrence.run_stack`). This pass does
not: the layers are causal, so it runs every step and picks the top layer's
output at each sequence's last real step with arithmetic, fewer ops for the
TFLite graphs, which it builds (`export.graph`), and one forward pass that
quantization-aware training fakes int8 in and the export reproduces with the
learned ranges (`quantize(name, tensor)` hooks at the same names).
"""

import functools

import keras
import tensorflow as tf

from keras_seqrnn import recurrence


def standardization_affine(layer) -> tuple[tf.Tensor, tf.Tensor]:
    """A Keras `Normalization` layer as `x * scale + shift`.

    Args:
        layer: a built `keras.layers.Normalization` over the last axis.

    Returns:
        `(scale, shift)`, each `(features,)` float32: Keras divides by
        `max(sqrt(variance), epsilon)`, so `scale` is its inverse and
        `shift = -mean * scale`.
    """
    mean = tf.reshape(tf.cast(layer.mean, tf.float32), [-1])
    variance = tf.reshape(tf.cast(layer.variance, tf.float32), [-1])
    scale = 1.0 / tf.maximum(tf.sqrt(variance), keras.config.epsilon())
    return scale, -mean * scale


def classifier_logits(
    sequences,
    lengths,
    weights,
    activation,
    head_kernel,
    head_bias,
    input_scale=None,
    input_shift=None,
    unroll: bool = False,
    quantize=None,
):
    """The classifier's logits, the one forward pass of the export.

    Quantization-aware training runs this same function, with
    `quantize(name, tensor)` faking int8 on every weight and every op's
    result; the export of its model passes the learned ranges at the same
    names, so the converter quantizes every tensor without calibration.

    Args:
        sequences: `(batch, time, features)`, padded after each sequence.
        lengths: `(batch,)` int32.
        weights: each layer's `recurrence.StepWeights`.
        activation: the candidates' activation.
        head_kernel: `(units, classes)`.
        head_bias: `(classes,)`.
        input_scale: None or `(features,)`: steps become
            `x * scale + shift`.
        input_shift: None or `(features,)`.
        unroll: unrolled over the static time axis, or a `WHILE` loop.
        quantize: None, or `quantize(name, tensor)`.
    """
    q = quantize or _identity
    x = q("sequences", sequences)
    if input_scale is not None:
        x = q("standardized", q("scaled", x * input_scale) + input_shift)
    weights = [
        w._replace(
            input_kernel=q(f"layer{i}/input_kernel", w.input_kernel),
            recurrent_kernel=q(f"layer{i}/recurrent_kernel", w.recurrent_kernel),
        )
        for i, w in enumerate(weights)
    ]
    y = _last_outputs(x, lengths, weights, activation, unroll, q)
    kernel = q("head_kernel", head_kernel)
    return q("logits", tf.matmul(y, kernel) + head_bias)


def _identity(name, tensor):
    del name
    return tensor


def _prefixed(quantize, prefix, name, tensor):
    return quantize(prefix + name, tensor)


def _last_outputs(x, lengths, weights, activation, unroll, q):
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
    layer_q = [
        functools.partial(_prefixed, q, f"layer{i}/") for i in range(len(weights))
    ]
    projected = recurrence.project_inputs(x, weights[0], layer_q[0])
    steps = x.shape[1] if unroll else tf.shape(x)[1]
    positions = tf.range(steps)[None, :]
    # t * (length - 1 - t) == 0 picks both steps in int32 arithmetic: the
    # GPU delegate rejects LOGICAL_OR, and float MAXIMUM of 0/1 tensors
    # breaks full-integer quantization.
    pick = tf.equal(positions * (lengths[:, None] - 1 - positions), 0)
    pick = q("pick", tf.expand_dims(tf.cast(pick, x.dtype), -1))
    nonempty = tf.cast(tf.minimum(lengths, 1), x.dtype)
    nonempty = q("nonempty", tf.expand_dims(nonempty, -1))
    batch = tf.shape(x)[0]
    dtype = x.dtype
    states = [tf.zeros(tf.stack([batch, w.units]), dtype) for w in weights]
    selected = tf.zeros(tf.stack([batch, weights[-1].units]), dtype)

    def advance(projected_t, pick_t, states, selected):
        new_states = []
        layer_input = projected_t
        for i, layer_weights in enumerate(weights):
            if i > 0:
                layer_input = recurrence.project_inputs(
                    y, layer_weights, layer_q[i]
                )
            h, y = recurrence.step(
                layer_input,
                states[i],
                None,
                layer_weights,
                activation,
                quantize=layer_q[i],
            )
            new_states.append(h)
        update = q("select_update", pick_t * q("select_delta", y - selected))
        return new_states, q("selected", selected + update)

    if unroll:
        for projected_t, pick_t in zip(
            tf.unstack(projected, axis=1), tf.unstack(pick, axis=1)
        ):
            states, selected = advance(projected_t, pick_t, states, selected)
        return q("output", selected * nonempty)

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
    return q("output", selected * nonempty)
