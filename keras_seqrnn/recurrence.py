"""The math of one recurrent step, written once, and the loop that runs it.

Every model path uses these functions: `WeightSharedRNNCell.call` (one step
inside `keras.layers.RNN`), `HighwayStackedRNN` (its own loop over time), and
the export package, which calls them on frozen weights to build TFLite graphs.

A layer's weights are fused before use: the input kernels of the RNN, the
carry gate, the transform gate and the skip projection are concatenated so
that the input projection of every time step is one matrix product before the
loop, and only `h @ recurrent_kernel` stays inside it.

Masking is arithmetic, `h + m * (h_new - h)`, rather than a select, because
full-integer TFLite quantizes it while it rejects `select` with mixed scales.
"""

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


def project_inputs(inputs: tf.Tensor, weights: StepWeights) -> tf.Tensor:
    """Projects the inputs of all time steps at once: `x W + b`.

    Args:
        inputs: `(..., input_dim)` tensor, e.g. `(batch, time, input_dim)`.
        weights: the layer's `StepWeights`.

    Returns:
        `(..., k * units)`, or `(..., k * units + input_dim)` when the
        highway's skip path is the identity (the inputs are appended).
    """
    projected = tf.matmul(inputs, weights.input_kernel)
    if weights.input_bias is not None:
        projected = projected + weights.input_bias
    if weights.identity_skip:
        projected = tf.concat([projected, inputs], axis=-1)
    return projected


def step(
    projected: tf.Tensor,
    h_prev: tf.Tensor,
    y_prev: tf.Tensor,
    weights: StepWeights,
    activation: Callable[[tf.Tensor], tf.Tensor],
    mask: Optional[tf.Tensor] = None,
    recurrent_dropout_mask: Optional[tf.Tensor] = None,
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
        projected: `(batch, width)`, this step's slice of `project_inputs`.
        h_prev: `(batch, units)`, the recurrent state.
        y_prev: `(batch, units)`, the layer's previous output.
        weights: the layer's `StepWeights`.
        activation: the candidate's activation.
        mask: None or `(batch, 1)` float, 1 for a real step, 0 for padding.
        recurrent_dropout_mask: None or a `(batch, units)` mask applied to
            `h_prev` before the recurrent product.

    Returns:
        `(h, y)`: the new state and the layer's output at this step.
    """
    units = weights.units
    blocks = 1 + int(weights.time_gate) + int(weights.depth_gate)
    sizes = [units] * blocks
    if weights.depth_gate:
        sizes.append(int(projected.shape[-1]) - units * blocks)
    if len(sizes) == 1:
        parts = [projected]
    else:
        parts = tf.split(projected, sizes, axis=-1)
    h_in = h_prev
    if recurrent_dropout_mask is not None:
        h_in = h_prev * recurrent_dropout_mask
    recurrent = tf.matmul(h_in, weights.recurrent_kernel)
    if weights.time_gate:
        recurrent, carry_recurrent = tf.split(recurrent, 2, axis=-1)
    h = parts[0] + recurrent
    if activation is not None:
        h = activation(h)
    if weights.time_gate:
        carry = tf.sigmoid(parts[1] + carry_recurrent)
        h = h_prev + carry * (h - h_prev)
    if mask is not None:
        h = h_prev + mask * (h - h_prev)
    if not weights.depth_gate:
        return h, h
    transform = tf.sigmoid(parts[-2])
    y = parts[-1] + transform * (h - parts[-1])
    if mask is not None:
        y = y_prev + mask * (y - y_prev)
    return h, y


def run_layer(
    inputs: tf.Tensor,
    weights: StepWeights,
    activation: Callable[[tf.Tensor], tf.Tensor],
    mask: Optional[tf.Tensor] = None,
    recurrent_dropout_mask: Optional[tf.Tensor] = None,
    return_sequences: bool = True,
    unroll: bool = False,
) -> tuple[Optional[tf.Tensor], tf.Tensor, tf.Tensor]:
    """Runs one layer over time, from a zero state.

    The input projection is one matrix product before the loop; the loop
    carries the state `(h, y)` and, only where `return_sequences`, writes
    each step's output. The loop is a `tf.while_loop`, for any length, or,
    unrolled, a straight line of steps over `tf.unstack`ed inputs, which
    TFLite's GPU delegate and full-integer quantization need (in training
    under XLA it compiles several times longer and runs no faster).

    Args:
        inputs: `(batch, time, input_dim)` tensor; time may be dynamic.
        weights: the layer's `StepWeights`.
        activation: the candidate's activation.
        mask: None or a `(batch, time)` boolean or 0/1 tensor.
        recurrent_dropout_mask: None or a `(batch, units)` mask.
        return_sequences: whether to collect the output of every step.
        unroll: True to unroll (the time axis must be static), False for
            a `tf.while_loop`.

    Returns:
        `(outputs, h, y)`: outputs `(batch, time, units)` or None, the final
        state and the final output (both `(batch, units)`).
    """
    if unroll and inputs.shape[1] is None:
        raise ValueError(
            "`unroll=True` needs a static time axis, got inputs of shape "
            f"{tuple(inputs.shape)}."
        )
    if unroll:
        return _run_unrolled(
            inputs, weights, activation, mask, recurrent_dropout_mask,
            return_sequences,
        )
    projected = tf.transpose(project_inputs(inputs, weights), [1, 0, 2])
    dtype = projected.dtype
    batch = tf.shape(projected)[1]
    time = tf.shape(projected)[0]
    zeros = tf.zeros(tf.stack([batch, weights.units]), dtype)
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, dtype), [1, 0])[:, :, None]
    loop_vars = (tf.constant(0), zeros, zeros)
    if return_sequences:
        loop_vars += (tf.TensorArray(dtype, size=time, element_shape=zeros.shape),)

    def body(t, h, y, *outputs):
        h, y = step(
            projected[t],
            h,
            y,
            weights,
            activation,
            mask=None if mask is None else mask[t],
            recurrent_dropout_mask=recurrent_dropout_mask,
        )
        return (t + 1, h, y) + tuple(o.write(t, y) for o in outputs)

    _, h, y, *outputs = tf.while_loop(
        lambda t, *_: t < time, body, loop_vars, maximum_iterations=time
    )
    if not outputs:
        return None, h, y
    return tf.transpose(outputs[0].stack(), [1, 0, 2]), h, y


def _run_unrolled(
    inputs, weights, activation, mask, recurrent_dropout_mask, return_sequences
):
    projected = project_inputs(inputs, weights)
    dtype = projected.dtype
    zeros = tf.zeros(tf.stack([tf.shape(inputs)[0], weights.units]), dtype)
    h = y = zeros
    masks = [None] * inputs.shape[1]
    if mask is not None:
        masks = tf.unstack(tf.cast(mask, dtype)[:, :, None], axis=1)
    outputs = []
    for projected_t, mask_t in zip(tf.unstack(projected, axis=1), masks):
        h, y = step(
            projected_t,
            h,
            y,
            weights,
            activation,
            mask=mask_t,
            recurrent_dropout_mask=recurrent_dropout_mask,
        )
        outputs.append(y)
    if not return_sequences:
        return None, h, y
    if not outputs:
        return tf.zeros_like(projected[:, :, : weights.units]), h, y
    return tf.stack(outputs, axis=1), h, y
