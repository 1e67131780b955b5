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
    picked with a one-hot of the last step instead of masking `h` and `y`
    at every step. Unrolled, the outputs of all steps are stacked and summed
    against it (3 ops in all); the loop, which carries only the states,
    adds `one_hot_t * y_t` as it goes (2 ops a step). The two give the same
    numbers under fake quantization: every partial sum is 0 or the output.
    A sequence of length 0 gets zeros, the zero state of the masked layers.
    """
    layer_q = [
        functools.partial(_prefixed, q, f"layer{i}/") for i in range(len(weights))
    ]
    dtype = x.dtype
    batch = tf.shape(x)[0]
    states = [tf.zeros(tf.stack([batch, w.units]), dtype) for w in weights]

    def advance(blocks_t, states):
        new_states = []
        layer_input = blocks_t
        for i, layer_weights in enumerate(weights):
            if i > 0:
                layer_input = recurrence.project_inputs(
                    y, layer_weights, layer_q[i], split=True
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
        return new_states, y

    top = f"layer{len(weights) - 1}/y"
    steps = x.shape[1] if unroll else tf.shape(x)[1]
    # last - t == 0, not t == last: the converter turns the latter into
    # ONE_HOT, whose int8 form cost 27 points of accuracy.
    one_hot = tf.equal(lengths[:, None] - 1 - tf.range(steps)[None, :], 0)
    one_hot = q("pick", tf.expand_dims(tf.cast(one_hot, dtype), -1))
    if unroll:
        blocks = recurrence.project_inputs(x, weights[0], layer_q[0], split=True)
        outputs = []
        for blocks_t in zip(*(tf.unstack(b, axis=1) for b in blocks)):
            states, y = advance(blocks_t, states)
            outputs.append(y)
        outputs = q(top, tf.stack(outputs, axis=1))
        return q("output", tf.reduce_sum(q(top, outputs * one_hot), axis=1))

    # Time-major, and read with GATHER: a slice at a loop-dependent offset
    # has a dynamic shape, which TFLite reallocates on every step (it made
    # the loop half as fast).
    projected = tf.transpose(
        recurrence.project_inputs(x, weights[0], layer_q[0]), [1, 0, 2]
    )
    one_hot = tf.transpose(one_hot, [1, 0, 2])

    def body(t, states, selected):
        states, y = advance(tf.gather(projected, t), states)
        picked = q(top, tf.gather(one_hot, t) * y)
        return t + 1, states, q("output", selected + picked)

    selected = tf.zeros(tf.stack([batch, weights[-1].units]), dtype)
    _, _, selected = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), states, selected),
        maximum_iterations=steps,
    )
    return selected
