"""The classifier's forward pass for export, quantization-aware training
and streaming.

The Keras layers mask padded steps (`recurrence.run_stack`). This pass masks
only where it must: the forward stack is causal, so it runs every step
unmasked and picks the top layer's output at each sequence's last real step,
and sums it over the real steps, with arithmetic; the backward stack reads
the padding first and is masked there, so it starts each sequence from zero
states. That is fewer ops for the TFLite graphs, which it builds
(`export.graph`), and one forward pass that quantization-aware training
fakes int8 in and the export reproduces with the learned ranges
(`quantize(name, tensor)` hooks at the same names).

The same pass classifies one chunk of a stream (`state`): it starts from
the state the previous chunk left, returns the probabilities as if the
sequence ended with the chunk, and the state after it. Both use
`recurrence.Stack` and `recurrence.time_loop`, the layers' own driver.
"""

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


# The stream state's names: each forward layer's `h{i}`, then the pooling's.
LAST = "last"
MEAN = "mean"
FRAMES = "frames"


def stream_state_shapes(units: list[int], pooling: str) -> dict:
    """The state a stream carries between chunks, name to `(size, dtype)`.

    `h{i}`: layer `i`'s state, `(batch, units[i])` float32. With `"last"`
    pooling, `last`: the top layer's output at the last real step so far.
    With `"mean"` pooling, `mean`: the mean of its outputs so far (a running
    mean, bounded like the outputs, not a growing sum) and `frames`: how
    many recurrent steps it averages, `(batch,)` int32. All zero at the
    start of a stream.
    """
    shapes = {f"h{i}": (u, "float32") for i, u in enumerate(units)}
    if "last" in pooling:
        shapes[LAST] = (units[-1], "float32")
    if "mean" in pooling:
        shapes[MEAN] = (units[-1], "float32")
        shapes[FRAMES] = (None, "int32")
    return shapes


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
    state: dict | None = None,
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
        state: None, or a stream's state (`stream_state_shapes`): then
            `sequences` is the next chunk of each stream, `lengths` its
            real steps, and the logits are those of each stream's steps so
            far. The state advances by the chunk's whole frames: the steps
            of a last, partial frame count in the logits (completed with
            zeros, as at a sequence's end) but not in the state, so feed
            them again at the start of the next chunk. Forward stacks only.

    Returns:
        The logits `(batch, classes)`; with `state`, `(logits, new_state)`.
    """
    if state is not None and backward_weights is not None:
        raise ValueError(
            "A bidirectional classifier reads each sequence backwards from "
            "its end, so it cannot classify a stream before it ends."
        )
    q = quantize or _identity
    x = q("sequences", sequences)
    if input_scale is not None:
        x = q("standardized", q("scaled", x * input_scale) + input_shift)
    committed = lengths
    if frame_length > 1:
        # The last frame of a sequence is completed with zeros, as in the
        # Keras model: standardized padding is zero there.
        position = tf.range(x.shape[1] if unroll else tf.shape(x)[1])
        real = tf.less(position[None, :], lengths[:, None])
        real = q("step_valid", tf.expand_dims(tf.cast(real, x.dtype), -1))
        x = q("real_steps", x * real)
        committed = lengths // frame_length
        x, lengths = framing.stack_frames(x, lengths, frame_length)
    stacks = [recurrence.Stack(weights, activation, quantize)]
    if backward_weights is not None:
        stacks.append(
            recurrence.Stack(backward_weights, activation, quantize, BACKWARD)
        )
    features, new_state = _pooled_features(
        x, lengths, stacks, pooling, unroll, q, state, committed
    )
    if len(features) > 1:
        features = [q("features", tf.concat(features, axis=-1))]
    kernel = q("head_kernel", head_kernel)
    logits = q("logits", tf.matmul(features[0], kernel) + head_bias)
    if state is None:
        return logits
    return logits, new_state


# The prefix of the backward stack's tensor names.
BACKWARD = "backward/"


def _identity(name, tensor):
    del name
    return tensor


def _pooled_features(x, lengths, stacks, pooling, unroll, q, state, committed):
    """Each stack's pooled outputs: `[last, mean]` of the forward stack's,
    then of the backward one's, as `SequenceClassifier` concatenates them;
    with a stream `state`, also the new state.

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

    A stream's states are kept at the chunk's padding and after its last
    whole frame (`committed`), as `m * h_new + (1 - m) * h`: each partial
    sum is 0 or a state, so it quantizes in the state's range.
    """
    last, mean = "last" in pooling, "mean" in pooling
    streaming = state is not None
    forward = stacks[0]
    dtype = x.dtype
    batch = tf.shape(x)[0]
    steps = x.shape[1] if unroll else tf.shape(x)[1]
    position = tf.range(steps)[None, :]

    def real_steps(ends, name):
        valid = tf.less(position, ends[:, None])
        return q(name, tf.expand_dims(tf.cast(valid, dtype), -1))

    def last_step(ends):
        # last - t == 0, not t == last: the converter turns the latter into
        # ONE_HOT, whose int8 form cost 27 points of accuracy.
        one_hot = tf.equal(ends[:, None] - 1 - position, 0)
        return q("pick", tf.expand_dims(tf.cast(one_hot, dtype), -1))

    # The forward stack's ends: each sequence's, and, streaming with
    # frames, where its state stops.
    ends = [lengths]
    if streaming and committed is not lengths:
        ends.append(committed)
    picks = [last_step(n) for n in ends] if last else []
    sums = [real_steps(n, "valid") for n in ends] if mean else []
    keep = real_steps(ends[-1], "valid") if streaming else None
    valid = None
    if len(stacks) > 1:
        valid = sums[0] if mean else real_steps(lengths, "valid")

    # Time-major for the loop, read with GATHER; unrolled, unstacked along
    # time as they are.
    time_axis = 1 if unroll else 0

    def along_time(tensor):
        if tensor is None or unroll:
            return tensor
        return tf.transpose(tensor, [1, 0, 2])

    sequences = []
    blocks = []
    for stack in stacks:
        projected = stack.project(x, split=unroll)
        projected = projected if unroll else [projected]
        blocks.append(range(len(sequences), len(sequences) + len(projected)))
        sequences += [along_time(p) for p in projected]
    inputs = {}
    for name, tensors in (("picks", picks), ("sums", sums)):
        if not unroll:
            inputs[name] = range(len(sequences), len(sequences) + len(tensors))
            sequences += [along_time(t) for t in tensors]
    inputs["keep"] = len(sequences)
    sequences.append(along_time(keep))
    inputs["valid"] = len(sequences)
    sequences.append(along_time(valid))

    zeros = tf.zeros(tf.stack([batch, forward.units[-1]]), dtype)
    initial = forward.zero_states(batch, dtype)
    if streaming:
        initial = [state[f"h{i}"] for i in range(len(forward.weights))]
    carried = [(initial, [zeros] * len(picks), [zeros] * len(sums))]
    for stack in stacks[1:]:
        carried.append((stack.zero_states(batch, dtype), zeros, zeros))

    def step_blocks(read, indices, index):
        parts = [read(i, index) for i in indices]
        return parts if unroll else parts[0]

    def body(t, read, carried):
        new = []
        states, *_ = carried[0]
        new_states, outputs = forward.advance(
            step_blocks(read, blocks[0], t), states
        )
        if streaming:
            m = read(inputs["keep"], t)
            new_states = [
                _keep(forward, i, q, m, h_new, h)
                for i, (h_new, h) in enumerate(zip(new_states, states))
            ]
        y = outputs[-1]
        _, picked, summed = carried[0]
        if not unroll:
            picked = [
                q("output", p + q(forward.top, read(i, t) * y))
                for p, i in zip(picked, inputs["picks"])
            ]
            summed = [
                forward.q("sum", s + q(forward.top, read(i, t) * y))
                for s, i in zip(summed, inputs["sums"])
            ]
        new.append((new_states, picked, summed))
        for stack, stack_blocks, (states, _, total) in zip(
            stacks[1:], blocks[1:], carried[1:]
        ):
            read_at = steps - 1 - t
            states, outputs = stack.advance(
                step_blocks(read, stack_blocks, read_at),
                states,
                mask=read(inputs["valid"], read_at),
                masking="zero",
            )
            # A running sum (its outputs are 0 at the padding): calibrated
            # int8 gives each step's output its own scale, and XNNPACK then
            # fails to prepare their PACK.
            if mean:
                total = outputs[-1] if unroll and t == 0 else stack.q(
                    "sum", total + outputs[-1]
                )
            new.append((states, outputs[-1], total))
        return new, y

    carried, stacked = recurrence.time_loop(
        body,
        sequences,
        carried,
        steps,
        unroll,
        collect=zeros.shape if unroll else False,
        time_axis=time_axis,
    )
    states, picked, summed = carried[0]
    if unroll:
        stacked = q(forward.top, stacked)
        picked = [
            q("output", tf.reduce_sum(q(forward.top, stacked * p), axis=1))
            for p in picks
        ]
        summed = [
            forward.q("sum", tf.reduce_sum(q(forward.top, stacked * s), axis=1))
            for s in sums
        ]
    features, new_state = [], None
    if streaming:
        new_state = {f"h{i}": h for i, h in enumerate(states)}
        pooled = _stream_pooling(
            forward, q, state, ends, picked, summed, dtype
        )
        new_state.update(pooled[1])
        return pooled[0], new_state
    if mean:
        count = tf.maximum(tf.cast(lengths, dtype), 1.0)
        reciprocal = q("reciprocal", tf.expand_dims(1.0 / count, -1))
    pooled = [(forward, picked[:1], summed[:1])]
    pooled += [(s, [c[1]], [c[2]]) for s, c in zip(stacks[1:], carried[1:])]
    for stack, last_output, total in pooled:
        if last:
            features += last_output
        if mean:
            features.append(stack.q("mean", total[0] * reciprocal))
    return features, None


def _keep(stack, layer, q, m, h_new, h):
    """`h_new` where `m` is 1, else `h`; every partial sum is one of them."""
    name = stack.name(
        layer, recurrence.state_name(stack.weights[layer], stack.activation)
    )
    return q(name, q(name, m * h_new) + q(name, (1.0 - m) * h))


def _stream_pooling(stack, q, state, ends, picked, summed, dtype):
    """The pooled features at each end (the chunk's, then, with frames,
    where its state stops) from the chunk's picks and sums and the state
    before the chunk: `[(features, state)]` per end."""
    results = []
    for i, end in enumerate(ends):
        features, pooled_state = [], {}
        nothing = tf.expand_dims(tf.cast(tf.equal(end, 0), dtype), -1)
        nothing = q("valid", nothing)
        if picked:
            # The chunk's last output, or the state's where it has none.
            output = q("output", picked[i] + q("output", nothing * state[LAST]))
            features.append(output)
            pooled_state[LAST] = output
        if summed:
            frames = state[FRAMES] + end
            count = tf.cast(tf.maximum(frames, 1), dtype)
            old = tf.cast(state[FRAMES], dtype) / count
            old = q("reciprocal", tf.expand_dims(old, -1))
            new = q("reciprocal", tf.expand_dims(1.0 / count, -1))
            average = stack.q(
                "mean",
                stack.q("mean", state[MEAN] * old)
                + stack.q("mean", summed[i] * new),
            )
            features.append(average)
            pooled_state.update({MEAN: average, FRAMES: frames})
        results.append((features, pooled_state))
    return results[0][0], results[-1][1]
