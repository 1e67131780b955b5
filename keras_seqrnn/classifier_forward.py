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
    """
    q = quantize or _identity
    x = q("sequences", sequences)
    if input_scale is not None:
        x = q("standardized", q("scaled", x * input_scale) + input_shift)
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
        self.top = f"{prefix}layer{len(weights) - 1}/" + recurrence.output_name(
            weights[-1], activation, masked=self.backward
        )

    def initial_states(self, batch, dtype):
        # (h, y) per layer; the forward stack runs unmasked and needs no y.
        return [
            tf.zeros(tf.stack([batch, w.units]), dtype)
            for w in self.weights
            for _ in range(1 + self.backward)
        ]

    def project(self, x, split):
        return recurrence.project_inputs(
            x, self.weights[0], self.layer_q[0], split=split
        )

    def advance(self, blocks_t, states, mask_t):
        """One step of every layer; the backward stack is masked."""
        width = 1 + self.backward
        new_states = []
        layer_input = blocks_t
        for i, layer_weights in enumerate(self.weights):
            if i > 0:
                layer_input = recurrence.project_inputs(
                    y, layer_weights, self.layer_q[i], split=True
                )
            h, y = recurrence.step(
                layer_input,
                states[width * i],
                states[width * i + 1] if self.backward else None,
                layer_weights,
                self.activation,
                mask=mask_t if self.backward else None,
                quantize=self.layer_q[i],
            )
            new_states += [h, y] if self.backward else [h]
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

    def pooled(stack, picked, total, y):
        features = []
        if last:
            features.append(y if stack.backward else picked)
        if mean:
            features.append(stack.q("mean", total * reciprocal))
        return features

    if unroll:
        features = []
        masks = tf.unstack(valid, axis=1) if valid is not None else None
        for stack in stacks:
            blocks = [tf.unstack(b, axis=1) for b in stack.project(x, True)]
            order = range(steps)
            if stack.backward:
                order = reversed(order)
            states = stack.initial_states(batch, dtype)
            outputs = [None] * steps
            picked = total = None
            for t in order:
                blocks_t = [b[t] for b in blocks]
                states, outputs[t] = stack.advance(
                    blocks_t, states, masks[t] if masks else None
                )
                # Backward, a running sum: stacking the outputs would put
                # the first step's, which the converter folds into its
                # masked update, on another int8 scale than the rest.
                if mean and stack.backward:
                    total = outputs[t] if total is None else stack.q(
                        "sum", total + outputs[t]
                    )
            if not stack.backward:
                outputs = q(stack.top, tf.stack(outputs, axis=1))
                if last:
                    picked = q("output", tf.reduce_sum(
                        q(stack.top, outputs * one_hot), axis=1))
                if mean:
                    total = stack.q("sum", tf.reduce_sum(
                        q(stack.top, outputs * valid), axis=1))
            features += pooled(stack, picked, total, states[-1])
        return features

    # Time-major, and read with GATHER: a slice at a loop-dependent offset
    # has a dynamic shape, which TFLite reallocates on every step (it made
    # the loop half as fast). Both stacks advance in the one loop, the
    # backward one at step `steps - 1 - t`.
    def time_major(tensor):
        return None if tensor is None else tf.transpose(tensor, [1, 0, 2])

    projected = [time_major(stack.project(x, False)) for stack in stacks]
    one_hot, valid = time_major(one_hot), time_major(valid)
    zeros = tf.zeros(tf.stack([batch, stacks[0].weights[-1].units]), dtype)

    def body(t, states, sums):
        new_states, new_sums = [], []
        for stack, projected_t, stack_states, stack_sums in zip(
            stacks, projected, states, sums
        ):
            read = steps - 1 - t if stack.backward else t
            mask_t = tf.gather(valid, read) if stack.backward else None
            stack_states, y = stack.advance(
                tf.gather(projected_t, read), stack_states, mask_t
            )
            new_states.append(stack_states)
            stack_sums = list(stack_sums)
            if last and not stack.backward:
                picked = q(stack.top, tf.gather(one_hot, t) * y)
                stack_sums[0] = q("output", stack_sums[0] + picked)
            if mean:
                if not stack.backward:
                    y = q(stack.top, tf.gather(valid, t) * y)
                stack_sums[-1] = stack.q("sum", stack_sums[-1] + y)
            new_sums.append(stack_sums)
        return t + 1, new_states, new_sums

    sums = [
        [zeros] * ((last and not stack.backward) + mean) for stack in stacks
    ]
    _, states, sums = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (
            tf.constant(0),
            [stack.initial_states(batch, dtype) for stack in stacks],
            sums,
        ),
        maximum_iterations=steps,
    )
    features = []
    for stack, stack_states, stack_sums in zip(stacks, states, sums):
        picked = stack_sums[0] if last and not stack.backward else None
        total = stack_sums[-1] if mean else None
        features += pooled(stack, picked, total, stack_states[-1])
    return features
