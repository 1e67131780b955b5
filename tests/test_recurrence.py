import numpy as np
import pytest
import tensorflow as tf

from keras_seqrnn import recurrence


def _weights(rng, input_dim, units, time_gate, depth_gate, projection):
    def normal(*shape):
        return tf.constant(rng.normal(size=shape).astype("float32"))

    return recurrence.LayerWeights(
        kernel=normal(input_dim, units),
        recurrent_kernel=normal(units, units),
        bias=normal(units),
        carry_kernel=normal(input_dim, units) if time_gate else None,
        carry_recurrent_kernel=normal(units, units) if time_gate else None,
        carry_bias=normal(units) if time_gate else None,
        transform_kernel=normal(input_dim, units) if depth_gate else None,
        transform_bias=normal(units) if depth_gate else None,
        projection=normal(input_dim, units) if projection else None,
    )


CASES = [
    (False, False, False),
    (True, False, False),
    (False, True, False),
    (False, True, True),
    (True, True, True),
]
CASE_IDS = ["plain", "time", "depth_identity", "depth_projection", "both"]


@pytest.mark.parametrize("time_gate,depth_gate,projection", CASES, ids=CASE_IDS)
def test_fused_layout(rng, time_gate, depth_gate, projection):
    input_dim = 3 if projection else 4
    w = _weights(rng, input_dim, 4, time_gate, depth_gate, projection)
    fused = recurrence.fuse_weights(w)
    blocks = 1 + time_gate + depth_gate + projection
    assert fused.input_kernel.shape == (input_dim, 4 * blocks)
    assert fused.recurrent_kernel.shape == (4, 4 * (1 + time_gate))
    assert fused.identity_skip == (depth_gate and not projection)
    x = rng.normal(size=(2, 5, input_dim)).astype("float32")
    projected = recurrence.project_inputs(x, fused)
    width = 4 * blocks + (input_dim if fused.identity_skip else 0)
    assert projected.shape == (2, 5, width)
    np.testing.assert_allclose(
        projected[..., :4], x @ w.kernel.numpy() + w.bias.numpy(), atol=1e-5
    )


@pytest.mark.parametrize("time_gate,depth_gate,projection", CASES, ids=CASE_IDS)
def test_split_projection_is_the_step_input_in_blocks(
    rng, time_gate, depth_gate, projection
):
    input_dim = 3 if projection else 4
    fused = recurrence.fuse_weights(
        _weights(rng, input_dim, 4, time_gate, depth_gate, projection)
    )
    x = rng.normal(size=(2, input_dim)).astype("float32")
    whole = recurrence.project_inputs(x, fused)
    blocks = recurrence.project_inputs(x, fused, split=True)
    assert len(blocks) == 1 + time_gate + 2 * depth_gate
    np.testing.assert_array_equal(tf.concat(blocks, axis=-1), whole)
    h_prev = rng.normal(size=(2, 4)).astype("float32")
    for got, want in zip(
        recurrence.step(blocks, h_prev, h_prev, fused, tf.tanh),
        recurrence.step(whole, h_prev, h_prev, fused, tf.tanh),
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("time_gate,depth_gate,projection", CASES, ids=CASE_IDS)
def test_step_matches_equations(rng, time_gate, depth_gate, projection):
    input_dim = 3 if projection else 4
    w = _weights(rng, input_dim, 4, time_gate, depth_gate, projection)
    n = {k: None if v is None else v.numpy() for k, v in w._asdict().items()}
    fused = recurrence.fuse_weights(w)
    x = rng.normal(size=(2, input_dim)).astype("float32")
    h_prev = rng.normal(size=(2, 4)).astype("float32")
    y_prev = rng.normal(size=(2, 4)).astype("float32")
    mask = np.array([[1.0], [0.0]], "float32")
    h, y = recurrence.step(
        recurrence.project_inputs(x, fused),
        h_prev,
        y_prev,
        fused,
        tf.tanh,
        mask=mask,
    )
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    want_h = np.tanh(x @ n["kernel"] + h_prev @ n["recurrent_kernel"] + n["bias"])
    if time_gate:
        c = sigmoid(
            x @ n["carry_kernel"]
            + h_prev @ n["carry_recurrent_kernel"]
            + n["carry_bias"]
        )
        want_h = c * want_h + (1 - c) * h_prev
    want_y = want_h
    if depth_gate:
        g = sigmoid(x @ n["transform_kernel"] + n["transform_bias"])
        skip = x @ n["projection"] if projection else x
        want_y = g * want_h + (1 - g) * skip
    np.testing.assert_allclose(h[0], want_h[0], atol=1e-5)
    np.testing.assert_allclose(y[0], want_y[0], atol=1e-5)
    # The masked row keeps its state, and its output where there is a
    # separate output (the depth gate); else the output is the state.
    np.testing.assert_array_equal(h[1], h_prev[1])
    np.testing.assert_array_equal(y[1], y_prev[1] if depth_gate else h_prev[1])


def test_recurrent_dropout_mask_scales_the_state(rng):
    w = _weights(rng, 3, 4, False, False, False)
    fused = recurrence.fuse_weights(w)
    x = rng.normal(size=(2, 3)).astype("float32")
    h_prev = rng.normal(size=(2, 4)).astype("float32")
    dropped = np.array([[2.0, 0.0, 2.0, 0.0]] * 2, "float32")
    projected = recurrence.project_inputs(x, fused)
    got, _ = recurrence.step(
        projected, h_prev, h_prev, fused, tf.tanh, recurrent_dropout_mask=dropped
    )
    want, _ = recurrence.step(projected, h_prev * dropped, h_prev, fused, tf.tanh)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("unroll", [False, True], ids=["loop", "unrolled"])
def test_run_stack_with_and_without_sequences(rng, unroll):
    weights = [
        recurrence.fuse_weights(_weights(rng, 3, 4, True, True, True)),
        recurrence.fuse_weights(_weights(rng, 4, 5, False, True, True)),
    ]
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    mask = np.array([[1] * 6, [1, 1, 1, 0, 0, 0]], bool)
    outputs, states, y = recurrence.run_stack(
        x, weights, tf.tanh, mask=mask, return_sequences=True, unroll=unroll
    )
    none, states2, y2 = recurrence.run_stack(
        x, weights, tf.tanh, mask=mask, unroll=unroll
    )
    assert outputs.shape == (2, 6, 5) and none is None
    assert [s.shape for s in states] == [(2, 4), (2, 5)]
    for a, b in zip(states + [y], states2 + [y2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(outputs[:, -1], y)
    np.testing.assert_array_equal(outputs[1, 3:], np.repeat(outputs[1, 2:3], 3, 0))


def test_loop_stops_after_the_last_real_step(rng):
    weights = [recurrence.fuse_weights(_weights(rng, 3, 4, True, True, True))]
    x = tf.constant(rng.normal(size=(3, 8, 3)).astype("float32"))
    mask = np.zeros((3, 8), bool)
    mask[0, [0, 2]] = True  # a gap inside: the loop must not stop at it
    mask[1, :3] = True
    short = [x[:, :3], mask[:, :3]]
    _, want, _ = recurrence.run_stack(*short[:1], weights, tf.tanh, mask=short[1])
    _, got, _ = recurrence.run_stack(x, weights, tf.tanh, mask=mask)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[0][2], 0.0)
    _, none, _ = recurrence.run_stack(x, weights, tf.tanh, mask=np.zeros((3, 8)))
    np.testing.assert_array_equal(none[0], 0.0)

    def loss(x):
        return tf.reduce_sum(recurrence.run_stack(x, weights, tf.tanh, mask=mask)[2])

    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(x)
        return tape.gradient(value, x)

    eager = gradient(x)
    np.testing.assert_array_equal(eager[:, 3:], 0.0)
    compiled = tf.function(gradient, jit_compile=True)(x)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_run_stack_equals_layer_by_layer(rng):
    weights = [
        recurrence.fuse_weights(_weights(rng, 3, 4, False, True, True)),
        recurrence.fuse_weights(_weights(rng, 4, 4, True, False, False)),
    ]
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    mask = np.array([[1] * 5, [1, 1, 0, 0, 0], [0] * 5], bool)
    dropout = [None, (rng.random((3, 4)) > 0.5).astype("float32") * 2]
    stacked, states, _ = recurrence.run_stack(
        x, weights, tf.tanh, mask=mask, dropout_masks=dropout,
        return_sequences=True,
    )
    first, h0, _ = recurrence.run_stack(
        x, weights[:1], tf.tanh, mask=mask, return_sequences=True
    )
    second, h1, _ = recurrence.run_stack(
        first * dropout[1][:, None, :], weights[1:], tf.tanh, mask=mask,
        return_sequences=True,
    )
    np.testing.assert_allclose(stacked, second, atol=1e-6)
    np.testing.assert_allclose(states[0], h0[0], atol=1e-6)
    np.testing.assert_allclose(states[1], h1[0], atol=1e-6)
    np.testing.assert_array_equal(stacked[2], 0.0)


def test_unroll_needs_a_static_time_axis():
    weights = [recurrence.fuse_weights(_weights(np.random.default_rng(0), 3, 4, False, False, False))]
    run = tf.function(
        lambda x: recurrence.run_stack(x, weights, tf.tanh, unroll=True)[2],
        input_signature=[tf.TensorSpec((None, None, 3), tf.float32)],
    )
    with pytest.raises(ValueError, match="`unroll=True` needs a static time"):
        run.get_concrete_function()
