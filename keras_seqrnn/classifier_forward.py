"""The classifier's forward pass for export and quantization-aware training.

The Keras layers mask padded steps (`recurrence.run_stack`). This pass masks
only where it must: the forward stack is causal, so it runs every step
unmasked and picks the top layer's output at each sequence's last real step,
and sums it over the real steps, with arithmetic; the backward stack reads
the padding first and is masked there, so it starts each sequence from zero
states. That is fewer ops for the TFLite graphs, which it builds
(`export.graph`), and one forward pass that quantization-aware training
fakes int8 in and the export reproduces with the learned ranges
(`quantize(name, tensor)` hooks at the same names).
"""

import functools

import keras
import tensorflow as tf

from keras_seqrnn import framing
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
    backward_weights=None,
    pooling: str = "last",
    frame_length: int = 1,
):
    """The classifier's logits, the one forward pass of the export.

    Quantization-aware training runs this same function, with
    `quantize(name, tensor)` faking int8 on every weight and every op's
    result; the export of its model passes the learned ranges at the same
    names, so the converter quantizes every tensor without calibration.

    Args:
        sequences: `(batch, time, features)`, padded after each sequence.
        lengths: `(batch,)` int32.
        weights: each forward layer's `recurrence.StepWeights`.
        activation: the candidates' activation.
        head_kernel: `(pooled features, classes)`.
        head_bias: `(classes,)`.
        input_scale: None or `(features,)`: steps become
            `x * scale + shift`.
        input_shift: None or `(features,)`.
        unroll: unrolled over the static time axis, or a `WHILE` loop.
        quantize: None, or `quantize(name, tensor)`.
        backward_weights: None, or each layer's `StepWeights` of a second
            stack that reads the sequences backwards.
        pooling: `"last"`, `"mean"` or `"last_mean"`, as in
            `SequenceClassifier`.
        frame_length: how many consecutive steps one recurrent step reads
            (`keras_seqrnn.framing`). Default: `1`.
    """
    q = quantize or _identity
    x = q("sequences", sequences)
    if input_scale is not None:
        x = q("standardized", q("scaled", x * input_scale) + input_shift)
    if frame_length > 1:
        # The last frame of a sequence is completed with zeros, as in the
        # Keras model: standardized padding is zero there.
        position = tf.range(x.shape[1] if unroll else tf.shape(x)[1])
        real = tf.less(position[None, :], lengths[:, None])
        real = q("step_valid", tf.expand_dims(tf.cast(real, x.dtype), -1))
        x = q("real_steps", x * real)
        x, lengths = framing.stack_frames(x, lengths, frame_length)
    stacks = [_Stack(weights, "", activation, q)]
    if backward_weights is not None:
        stacks.append(_Stack(backward_weights, BACKWARD, activation, q))
    features = _pooled_features(x, lengths, stacks, pooling, unroll, q)
    if len(features) > 1:
        features = [q("features", tf.concat(features, axis=-1))]
    kernel = q("head_kernel", head_kernel)
    return q("logits", tf.matmul(features[0], kernel) + head_bias)


# The prefix of the backward stack's tensor names.
BACKWARD = "backward/"


def _identity(name, tensor):
    del name
    return tensor


def _prefixed(quantize, prefix, name, tensor):
    return quantize(prefix + name, tensor)


class _Stack:
    """One direction's layers, their quantizers and their step; the
    backward stack's tensor names start with `BACKWARD`."""

    def __init__(self, weights, prefix, activation, q):
        self.backward = bool(prefix)
        self.q = functools.partial(_prefixed, q, prefix)
        self.layer_q = [
            functools.partial(_prefixed, q, f"{prefix}layer{i}/")
            for i in range(len(weights))
        ]
        self.weights = [
            w._replace(
                input_kernel=layer_q("input_kernel", w.input_kernel),
                recurrent_kernel=layer_q(
                    "recurrent_kernel", w.recurrent_kernel
                ),
            )
            for w, layer_q in zip(weights, self.layer_q)
        ]
        self.activation = activation
        top = weights[-1]
        if self.backward:
            name = "y_masked" if top.depth_gate else "h_masked"
        else:
            name = recurrence.output_name(top, activation)
        self.top = f"{prefix}layer{len(weights) - 1}/{name}"

    def initial_states(self, batch, dtype):
        return [tf.zeros(tf.stack([batch, w.units]), dtype) for w in self.weights]

    def project(self, x, split):
        return recurrence.project_inputs(
            x, self.weights[0], self.layer_q[0], split=split
        )

    def advance(self, blocks_t, states, mask_t):
        """One step of every layer; the backward stack is masked."""
        new_states = []
        layer_input = blocks_t
        for i, (layer_weights, q) in enumerate(zip(self.weights, self.layer_q)):
            if i > 0:
                layer_input = recurrence.project_inputs(
                    y, layer_weights, q, split=True
                )
            h, y = recurrence.step(
                layer_input, states[i], None, layer_weights, self.activation,
                quantize=q,
            )
            if self.backward:
                # Read backwards, a sequence's padding comes before all its
                # real steps, so the states are still 0 there: masking is
                # one product, not `h + m * (h_new - h)`.
                h = q("h_masked", mask_t * h)
                y = q("y_masked", mask_t * y) if layer_weights.depth_gate else h
            new_states.append(h)
        return new_states, y


def _pooled_features(x, lengths, stacks, pooling, unroll, q):
    """Each stack's pooled outputs: `[last, mean]` of the forward stack's,
    then of the backward one's, as `SequenceClassifier` concatenates them.

    The forward stack is causal, so its output at step `length - 1` is the
    same whatever padding follows: its steps run unmasked, and the output is
    picked with a one-hot of the last step (and summed against the 0/1
    mask of the real steps for the mean) instead of masking `h` and `y` at
    every step. Unrolled, the outputs of all steps are stacked and summed
    against them (3 ops each); the loop, which carries only the states,
    adds `one_hot_t * y_t` as it goes (2 ops a step). The two give the same
    numbers under fake quantization: every partial sum is 0 or the output.
    The backward stack reads the padding first, masked, so its outputs stay
    0 there: its last output is the first step's, and its sum needs no mask.
    A sequence of length 0 gets zeros, as in the masked layers.
    """
    last, mean = "last" in pooling, "mean" in pooling
    backward = len(stacks) > 1
    dtype = x.dtype
    batch = tf.shape(x)[0]
    steps = x.shape[1] if unroll else tf.shape(x)[1]
    position = tf.range(steps)[None, :]
    one_hot = valid = reciprocal = None
    if last:
        # last - t == 0, not t == last: the converter turns the latter into
        # ONE_HOT, whose int8 form cost 27 points of accuracy.
        one_hot = tf.equal(lengths[:, None] - 1 - position, 0)
        one_hot = q("pick", tf.expand_dims(tf.cast(one_hot, dtype), -1))
    if mean or backward:
        valid = tf.less(position, lengths[:, None])
        valid = q("valid", tf.expand_dims(tf.cast(valid, dtype), -1))
    if mean:
        count = tf.maximum(tf.cast(lengths, dtype), 1.0)
        reciprocal = q("reciprocal", tf.expand_dims(1.0 / count, -1))

    def pooled(stack, last_output, total):
        features = []
        if last:
            features.append(last_output)
        if mean:
            features.append(stack.q("mean", total * reciprocal))
        return features

    if unroll:
        features = []
        masks = tf.unstack(valid, axis=1) if valid is not None else None
        for stack in stacks:
            blocks = [tf.unstack(b, axis=1) for b in stack.project(x, True)]
            order = reversed(range(steps)) if stack.backward else range(steps)
            states = stack.initial_states(batch, dtype)
            outputs = [None] * steps
            total = None
            for t in order:
                states, outputs[t] = stack.advance(
                    [b[t] for b in blocks], states, masks and masks[t]
                )
                # Backward, a running sum (its outputs are 0 at the
                # padding): calibrated int8 gives each step's output its
                # own scale, and XNNPACK then fails to prepare their PACK.
                if mean and stack.backward:
                    total = outputs[t] if total is None else stack.q(
                        "sum", total + outputs[t]
                    )
            last_output = outputs[0]
            if not stack.backward:
                stacked = q(stack.top, tf.stack(outputs, axis=1))
                if last:
                    last_output = q("output", tf.reduce_sum(
                        q(stack.top, stacked * one_hot), axis=1))
                if mean:
                    total = stack.q("sum", tf.reduce_sum(
                        q(stack.top, stacked * valid), axis=1))
            features += pooled(stack, last_output, total)
        return features

    # Time-major, and read with GATHER: a slice at a loop-dependent offset
    # has a dynamic shape, which TFLite reallocates on every step (it made
    # the loop half as fast). Both stacks advance in the one loop, the
    # backward one at step `steps - 1 - t`; each carries its states, its
    # last output (the backward one's) or the sum picking it (the forward
    # one's), and the sum of its outputs over the real steps.
    def time_major(tensor):
        return None if tensor is None else tf.transpose(tensor, [1, 0, 2])

    projected = [time_major(stack.project(x, False)) for stack in stacks]
    one_hot, valid = time_major(one_hot), time_major(valid)
    zeros = tf.zeros(tf.stack([batch, stacks[0].weights[-1].units]), dtype)

    def body(t, carried):
        new = []
        for stack, projected_t, (states, last_output, total) in zip(
            stacks, projected, carried
        ):
            read = steps - 1 - t if stack.backward else t
            mask_t = tf.gather(valid, read) if stack.backward else None
            states, y = stack.advance(
                tf.gather(projected_t, read), states, mask_t
            )
            if stack.backward:
                last_output = y
            elif last:
                picked = q(stack.top, tf.gather(one_hot, t) * y)
                last_output = q("output", last_output + picked)
            if mean:
                if not stack.backward:
                    y = q(stack.top, tf.gather(valid, t) * y)
                total = stack.q("sum", total + y)
            new.append((states, last_output, total))
        return t + 1, new

    _, carried = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (
            tf.constant(0),
            [(stack.initial_states(batch, dtype), zeros, zeros)
             for stack in stacks],
        ),
        maximum_iterations=steps,
    )
    features = []
    for stack, (_, last_output, total) in zip(stacks, carried):
        features += pooled(stack, last_output, total)
    return features
