"""The math of one recurrent step, written once, and the loop that runs it.

Every model path uses these functions: `WeightSharedRNNCell.call` (one step
inside `keras.layers.RNN`), `HighwayStackedRNN` (its own loop over time), and
the export package, which calls them on frozen weights to build TFLite graphs.

A layer's weights are fused before use: the input kernels of the RNN, the
carry gate, the transform gate and the skip projection are concatenated, so
that a layer's input projection is one matrix product, and the recurrent
kernels too, so that `h @ recurrent_kernel` is one more. The first layer's
projection of all time steps is done before the loop; deeper layers project
the output of the layer below at the same step (`run_stack`).

Masking is arithmetic, `h + m * (h_new - h)`, rather than a select, because
full-integer TFLite quantizes it while it rejects `select` with mixed scales.
"""

import functools
from typing import Callable
from typing import NamedTuple
from typing import Optional

import tensorflow as tf


class LayerWeights(NamedTuple):
    """The weights of one stacked recurrent layer, as tensors or arrays.

    `kernel` (W, `input_dim x units`), `recurrent_kernel` (U, `units x
    units`) and `bias` (b, or None) are the plain RNN's. The carry gate across
    time (`carry_*`) and the transform gate across depth (`transform_*`) are
    None where the layer has no such gate. `projection` (`input_dim x units`)
    maps the layer input onto the highway's skip path; it is None where the
    input already has `units` features, and the skip path is the identity.
    """

    kernel: tf.Tensor
    recurrent_kernel: tf.Tensor
    bias: Optional[tf.Tensor] = None
    carry_kernel: Optional[tf.Tensor] = None
    carry_recurrent_kernel: Optional[tf.Tensor] = None
    carry_bias: Optional[tf.Tensor] = None
    transform_kernel: Optional[tf.Tensor] = None
    transform_bias: Optional[tf.Tensor] = None
    projection: Optional[tf.Tensor] = None


class StepWeights(NamedTuple):
    """A layer's weights fused for `project_inputs` and `step`."""

    input_kernel: tf.Tensor
    input_bias: Optional[tf.Tensor]
    recurrent_kernel: tf.Tensor
    units: int
    time_gate: bool
    depth_gate: bool
    identity_skip: bool


def fuse_weights(weights: LayerWeights) -> StepWeights:
    """Concatenates a layer's weights into the blocks the step reads.

    Args:
        weights: a `LayerWeights`.

    Returns:
        A `StepWeights` whose projected input per step is laid out as
        `[candidate | carry gate | transform gate | skip]`, absent blocks
        left out.
    """
    units = int(weights.recurrent_kernel.shape[-1])
    time_gate = weights.carry_kernel is not None
    depth_gate = weights.transform_kernel is not None
    identity_skip = depth_gate and weights.projection is None
    kernels = [weights.kernel]
    recurrent = [weights.recurrent_kernel]
    biases = [weights.bias]
    if time_gate:
        kernels.append(weights.carry_kernel)
        recurrent.append(weights.carry_recurrent_kernel)
        biases.append(weights.carry_bias)
    if depth_gate:
        kernels.append(weights.transform_kernel)
        biases.append(weights.transform_bias)
        if not identity_skip:
            kernels.append(weights.projection)
            biases.append(None)
    dtype = tf.convert_to_tensor(weights.kernel).dtype
    if all(b is None for b in biases):
        input_bias = None
    else:
        input_bias = tf.concat(
            [
                tf.zeros([units], dtype) if b is None else tf.cast(b, dtype)
                for b in biases
            ],
            axis=0,
        )
    return StepWeights(
        input_kernel=_concat(kernels),
        input_bias=input_bias,
        recurrent_kernel=_concat(recurrent),
        units=units,
        time_gate=time_gate,
        depth_gate=depth_gate,
        identity_skip=identity_skip,
    )


def _concat(tensors):
    if len(tensors) == 1:
        return tf.convert_to_tensor(tensors[0])
    return tf.concat([tf.convert_to_tensor(t) for t in tensors], axis=-1)


def project_inputs(
    inputs: tf.Tensor,
    weights: StepWeights,
    quantize: Optional[Callable[[str, tf.Tensor], tf.Tensor]] = None,
    split: bool = False,
) -> tf.Tensor | list[tf.Tensor]:
    """Projects the inputs of all time steps at once: `x W + b`.

    Args:
        inputs: `(..., input_dim)` tensor, e.g. `(batch, time, input_dim)`.
        weights: the layer's `StepWeights`.
        quantize: None, or `quantize(name, tensor)` applied to every
            intermediate result (fake quantization; see `step`).
        split: whether to return the blocks `step` reads as a list rather
            than one tensor.

    Returns:
        `(..., k * units)`, or `(..., k * units + input_dim)` when the
        highway's skip path is the identity (the inputs are appended); with
        `split`, the list of blocks `[candidate, carry gate, transform gate,
        skip]` (absent ones left out), the skip block being `inputs` itself
        for the identity, with no concatenation.
    """
    q = quantize or _identity
    projected = tf.matmul(inputs, weights.input_kernel)
    if weights.input_bias is not None:
        projected = projected + weights.input_bias
    projected = q("projected", projected)
    if split:
        blocks = _blocks(projected, weights, skip_included=False)
        return blocks + ([inputs] if weights.identity_skip else [])
    if weights.identity_skip:
        projected = q("projected_skip", tf.concat([projected, inputs], axis=-1))
    return projected


def _blocks(projected, weights, skip_included=True):
    """Splits a projection into the blocks `project_inputs` lays out; an
    identity skip block is there only if `skip_included`."""
    count = 1 + int(weights.time_gate) + int(weights.depth_gate)
    sizes = [weights.units] * count
    if weights.depth_gate and (skip_included or not weights.identity_skip):
        sizes.append(int(projected.shape[-1]) - sum(sizes))
    if len(sizes) == 1:
        return [projected]
    return tf.split(projected, sizes, axis=-1)


def _identity(name, tensor):
    del name
    return tensor


def step(
    projected: tf.Tensor,
    h_prev: tf.Tensor,
    y_prev: tf.Tensor,
    weights: StepWeights,
    activation: Callable[[tf.Tensor], tf.Tensor],
    mask: Optional[tf.Tensor] = None,
    recurrent_dropout_mask: Optional[tf.Tensor] = None,
    quantize: Optional[Callable[[str, tf.Tensor], tf.Tensor]] = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One recurrent step of one layer.

    The plain RNN (Elman 1990): `h~ = activation(x W + h_prev U + b)`.
    The carry gate across time (Zilly et al. 2017, arXiv:1607.03474):
    `c = sigmoid(x W_c + h_prev U_c + b_c)`, `h~ = c * h~ + (1 - c) * h_prev`.
    The transform gate across depth (Srivastava et al. 2015,
    arXiv:1505.00387): `g = sigmoid(x W_g + b_g)`,
    `y = g * h + (1 - g) * x P` (P the identity where sizes match); without
    it `y = h`. Masked steps keep `h_prev` and `y_prev`.

    Args:
        projected: `(batch, width)`, this step's slice of `project_inputs`,
            or its blocks (`project_inputs(..., split=True)`).
        h_prev: `(batch, units)`, the recurrent state.
        y_prev: `(batch, units)`, the layer's previous output.
        weights: the layer's `StepWeights`.
        activation: the candidate's activation.
        mask: None or `(batch, 1)` float, 1 for a real step, 0 for padding.
        recurrent_dropout_mask: None or a `(batch, units)` mask applied to
            `h_prev` before the recurrent product.
        quantize: None, or `quantize(name, tensor)` applied to the result of
            every op, by name (`"recurrent"`, `"preactivation"`,
            `"candidate"`, `"carry"`, `"h"`, `"transform"`, `"y"`, ...):
            quantization-aware training fakes int8 there, and the export
            puts the learned ranges at the same places.

    Returns:
        `(h, y)`: the new state and the layer's output at this step.
    """
    if isinstance(projected, (list, tuple)):
        parts = list(projected)
    else:
        parts = _blocks(projected, weights)
    q = quantize or _identity
    h_in = h_prev
    if recurrent_dropout_mask is not None:
        h_in = h_prev * recurrent_dropout_mask
    recurrent = q("recurrent", tf.matmul(h_in, weights.recurrent_kernel))
    if weights.time_gate:
        recurrent, carry_recurrent = tf.split(recurrent, 2, axis=-1)
    h = q("preactivation", parts[0] + recurrent)
    if activation is not None:
        h = q("candidate", activation(h))
    if weights.time_gate:
        carry = q("carry_preactivation", parts[1] + carry_recurrent)
        carry = q("carry", tf.sigmoid(carry))
        update = q("carry_update", carry * q("carry_delta", h - h_prev))
        h = q("h", h_prev + update)
    if mask is not None:
        h = h_prev + mask * (h - h_prev)
    if not weights.depth_gate:
        return h, h
    transform = q("transform", tf.sigmoid(parts[-2]))
    update = q("y_update", transform * q("y_delta", h - parts[-1]))
    y = q("y", parts[-1] + update)
    if mask is not None:
        y = y_prev + mask * (y - y_prev)
    return h, y


def state_name(weights: StepWeights, activation) -> str:
    """The `quantize` name `step` gives the layer's new state `h`."""
    if weights.time_gate:
        return "h"
    return "preactivation" if activation is None else "candidate"


def output_name(weights: StepWeights, activation) -> str:
    """The `quantize` name `step` gives the layer's output `y` (unmasked).

    A tensor built from outputs (such as their stack over time) gets the
    same name, so the same range: int8 `PACK` needs one scale for all.
    """
    if weights.depth_gate:
        return "y"
    return state_name(weights, activation)


class Stack:
    """Stacked layers ready to run: their fused weights, quantizers and step.

    The one place where stacked layers advance by a step: every model path
    (`run_stack` for the Keras layers, `classifier_forward` for the export,
    quantization-aware training and streaming) advances a `Stack` inside
    `time_loop`.

    Args:
        weights: each layer's `StepWeights`, bottom first.
        activation: the candidates' activation.
        quantize: None, or `quantize(name, tensor)`: each layer's tensors
            are named `f"{prefix}layer{i}/{name}"` (its weights
            `input_kernel` and `recurrent_kernel` too), the stack's own
            `f"{prefix}{name}"`.
        prefix: the prefix of the stack's tensor names.
    """

    def __init__(self, weights, activation, quantize=None, prefix=""):
        q = quantize or _identity
        self.prefix = prefix
        self.activation = activation
        self.q = functools.partial(_prefixed, q, prefix)
        self.layer_q = [
            functools.partial(_prefixed, q, f"{prefix}layer{i}/")
            for i in range(len(weights))
        ]
        if quantize is not None:
            weights = [
                w._replace(
                    input_kernel=layer_q("input_kernel", w.input_kernel),
                    recurrent_kernel=layer_q(
                        "recurrent_kernel", w.recurrent_kernel
                    ),
                )
                for w, layer_q in zip(weights, self.layer_q)
            ]
        self.weights = list(weights)
        self.quantized = quantize is not None

    @property
    def units(self) -> list[int]:
        return [w.units for w in self.weights]

    def name(self, layer: int, name: str) -> str:
        """The full `quantize` name of tensor `name` of a layer."""
        return f"{self.prefix}layer{layer}/{name}"

    def zero_states(self, batch, dtype) -> list[tf.Tensor]:
        return [tf.zeros(tf.stack([batch, u]), dtype) for u in self.units]

    def project(self, x, split=False, dropout_mask=None):
        """The first layer's input projection of every step of `x`."""
        if dropout_mask is not None:
            x = x * dropout_mask[:, None, :]
        return project_inputs(
            x,
            self.weights[0],
            self.layer_q[0] if self.quantized else None,
            split=split,
        )

    def advance(
        self,
        blocks,
        states,
        outputs=None,
        mask=None,
        masking="carry",
        dropout_masks=None,
        recurrent_dropout_masks=None,
    ):
        """One step of every layer, bottom to top.

        Args:
            blocks: this step's first-layer projection (`project`).
            states: each layer's state `h`.
            outputs: each layer's previous output `y`, which a masked step
                of a layer with a depth gate keeps (`masking="carry"`).
            mask: None or `(batch, 1)`, 1 for a real step.
            masking: `"carry"`: a masked step keeps every state and output
                (`step`); `"zero"`: it gives zero states and outputs, one
                product (for a stack whose padding comes before all its
                real steps, so its states are still zero there).
            dropout_masks: None, or per layer None or a mask of its input
                (the first layer's is applied in `project`).
            recurrent_dropout_masks: None, or per layer None or a mask of
                its recurrent state.

        Returns:
            `(states, outputs)`: each layer's new `h` and `y`.
        """
        layers = len(self.weights)
        outputs = outputs or [None] * layers
        dropout_masks = dropout_masks or [None] * layers
        recurrent_dropout_masks = recurrent_dropout_masks or [None] * layers
        new_states, new_outputs = [], []
        layer_input = blocks
        for i, (weights, q) in enumerate(zip(self.weights, self.layer_q)):
            q = q if self.quantized else None
            if i > 0:
                below = new_outputs[-1]
                if dropout_masks[i] is not None:
                    below = below * dropout_masks[i]
                layer_input = project_inputs(below, weights, q, split=True)
            h, y = step(
                layer_input,
                states[i],
                outputs[i],
                weights,
                self.activation,
                mask=mask if masking == "carry" else None,
                recurrent_dropout_mask=recurrent_dropout_masks[i],
                quantize=q,
            )
            if masking == "zero" and mask is not None:
                q = q or _identity
                h = q("h_masked", mask * h)
                y = q("y_masked", mask * y) if weights.depth_gate else h
            new_states.append(h)
            new_outputs.append(y)
        return new_states, new_outputs

    @property
    def top(self) -> str:
        """The `quantize` name of the top layer's output (see
        `output_name`), which its outputs stacked over time share."""
        top = self.weights[-1]
        return self.name(
            len(self.weights) - 1, output_name(top, self.activation)
        )


def _prefixed(quantize, prefix, name, tensor):
    return quantize(prefix + name, tensor)


def time_loop(
    body,
    sequences,
    carried,
    steps,
    unroll: bool,
    start=None,
    collect=False,
    time_axis: int = 0,
    length=None,
):
    """The loop over time of every model path.

    Args:
        body: `body(t, read, carried) -> (carried, output)`; `read(i, index)`
            is step `index` of `sequences[i]` (`index` is `t`, or a step
            computed from it such as `steps - 1 - t`); `output` is None
            unless `collect`.
        sequences: tensors with time on axis `time_axis`, or None.
        carried: the initial loop state, a nest of tensors.
        steps: the number of steps: a Python int when unrolled, else an
            int32 scalar tensor.
        unroll: a straight line of `steps` steps over `tf.unstack`ed
            sequences, or a `tf.while_loop` carrying only `carried` (what
            TFLite's `WHILE` runs) that reads each step with `gather`: a
            slice at a loop-dependent offset has a dynamic shape, which
            TFLite reallocates on every step.
        start: for the loop, None (0) or the first step to run.
        length: for the loop, None (`steps`) or the time axis' length,
            which bounds the iterations where `start` and `steps` skip
            steps (XLA compiles a loop bounded by a data-dependent count
            into one that runs a hundred times slower).
        collect: False, or the shape of `output`, to stack the outputs
            over time (an XLA loop needs it static).
        time_axis: the time axis of `sequences` and of the stacked
            outputs; the loop reads time-major sequences faster.

    Returns:
        `(carried, outputs)`: the final loop state, and the outputs
        `(time, batch, ...)` stacked over time, or None.
    """
    if unroll:
        unstacked = [
            None if s is None else tf.unstack(s, axis=time_axis)
            for s in sequences
        ]

        def read(i, index):
            return unstacked[i][index]

        outputs = []
        for t in range(steps):
            carried, output = body(t, read, carried)
            outputs.append(output)
        if collect is False:
            return carried, None
        if not outputs:
            return carried, None
        return carried, tf.stack(outputs, axis=time_axis)

    def read_loop(i, index):
        return tf.gather(sequences[i], index, axis=time_axis)

    written = ()
    if collect is not False:
        written = (
            tf.TensorArray(
                _first(carried).dtype, size=steps, element_shape=collect
            ),
        )

    def loop_body(t, carried, *written):
        carried, output = body(t, read_loop, carried)
        return (t + 1, carried) + tuple(o.write(t, output) for o in written)

    _, carried, *written = tf.while_loop(
        lambda t, *_: t < steps,
        loop_body,
        (tf.constant(0) if start is None else start, carried, *written),
        maximum_iterations=steps if length is None else length,
    )
    if not written:
        return carried, None
    outputs = written[0].stack()
    if time_axis:
        outputs = tf.transpose(outputs, [1, 0, *range(2, outputs.shape.rank)])
    return carried, outputs


def _first(nest):
    return tf.nest.flatten(nest)[0]


def run_stack(
    inputs: tf.Tensor,
    weights: list[StepWeights],
    activation: Callable[[tf.Tensor], tf.Tensor],
    mask: Optional[tf.Tensor] = None,
    dropout_masks: Optional[list[Optional[tf.Tensor]]] = None,
    recurrent_dropout_masks: Optional[list[Optional[tf.Tensor]]] = None,
    return_sequences: bool = False,
    unroll: bool = False,
    initial_states: Optional[list[tf.Tensor]] = None,
) -> tuple[Optional[tf.Tensor], list[tf.Tensor], tf.Tensor]:
    """Runs stacked layers over time, from given or zero states, in one loop.

    The first layer's input projection is one matrix product before the
    loop. At each step every layer advances in turn (`Stack.advance`), the
    next reading the output of the one below at the same step, so the loop
    carries only the states `(h, y)` of every layer and no intermediate
    sequence is stored (for two layers of 64 units this trains a third
    faster than a loop per layer). The loop is `time_loop`: a
    `tf.while_loop`, for any length, or, unrolled, a straight line of steps
    (in training under XLA it compiles several times longer and runs no
    faster).

    Args:
        inputs: `(batch, time, input_dim)` tensor; time may be dynamic.
        weights: each layer's `StepWeights`, bottom first.
        activation: the candidates' activation.
        mask: None or a `(batch, time)` boolean or 0/1 tensor.
        dropout_masks: None, or one entry per layer: None or a
            `(batch, input_dim)` mask multiplying that layer's input at
            every step.
        recurrent_dropout_masks: None, or one entry per layer: None or a
            `(batch, units)` mask for the recurrent state.
        return_sequences: whether to collect the top layer's output at
            every step.
        unroll: True to unroll (the time axis must be static), False for
            a `tf.while_loop`.
        initial_states: None (zeros), or each layer's initial state `h`,
            `(batch, units)`. The layers' outputs start at zero, as Keras'
            RNN layers' do.

    Returns:
        `(outputs, states, y)`: the top layer's outputs
        `(batch, time, units)` or None, every layer's final state `h`, and
        the top layer's final output.
    """
    if unroll and inputs.shape[1] is None:
        raise ValueError(
            "`unroll=True` needs a static time axis, got inputs of shape "
            f"{tuple(inputs.shape)}."
        )
    stack = Stack(weights, activation)
    layers = len(weights)
    dropout_masks = dropout_masks or [None] * layers
    projected = stack.project(inputs, dropout_mask=dropout_masks[0])
    dtype = projected.dtype
    batch = tf.shape(inputs)[0]
    zeros = stack.zero_states(batch, dtype)
    states = zeros
    if initial_states is not None:
        states = [tf.cast(h, dtype) for h in initial_states]
    if mask is not None:
        # expand_dims, not [:, :, None]: TFLite has no strided slice with
        # a new axis, and this stays convertible.
        mask = tf.transpose(tf.expand_dims(tf.cast(mask, dtype), -1), [1, 0, 2])
    projected = tf.transpose(projected, [1, 0, 2])
    steps = inputs.shape[1] if unroll else tf.shape(projected)[0]
    start = length = None
    if mask is not None and not return_sequences and not unroll:
        # Steps before the batch's first real one and after its last change
        # nothing: skip them. A batch of sequences of similar lengths,
        # padded to a longer shape (or reversed, the padding first), then
        # costs only its own length.
        real = tf.reduce_any(mask[:, :, 0] > 0, axis=1)
        index = tf.range(steps)
        length = steps
        steps = tf.reduce_max(tf.where(real, index + 1, tf.zeros_like(index)))
        start = tf.minimum(
            tf.reduce_min(tf.where(real, index, tf.fill([length], length))),
            steps,
        )

    def body(t, read, carried):
        states, outputs = carried
        states, outputs = stack.advance(
            read(0, t),
            states,
            outputs,
            mask=None if mask is None else read(1, t),
            dropout_masks=[None] + list(dropout_masks[1:]),
            recurrent_dropout_masks=recurrent_dropout_masks,
        )
        return (states, outputs), outputs[-1]

    (states, outputs), sequences = time_loop(
        body,
        [projected, mask],
        (states, zeros),
        steps,
        unroll,
        start=start,
        collect=zeros[-1].shape if return_sequences else False,
        length=length,
    )
    if return_sequences:
        if sequences is None:
            sequences = tf.zeros(tf.stack([0, batch, weights[-1].units]), dtype)
        sequences = tf.transpose(sequences, [1, 0, 2])
    return sequences, states, outputs[-1]
