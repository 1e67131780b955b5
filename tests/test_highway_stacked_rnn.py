import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_seqrnn import HighwayStackedRNN
from tests.layer_checks import assert_layer_contract

MODES = ["depth", "time", "both", None]
MODE_IDS = ["depth", "time", "both", "plain"]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_stack(layer, x, mask):
    """A NumPy reading of the docstring's equations, layer by layer."""
    sequence = x.astype("float64")
    states = []
    for i in range(layer.num_layers):
        w = {
            k: None if v is None else np.asarray(v, "float64")
            for k, v in layer.layer_weights(i)._asdict().items()
        }
        units = w["recurrent_kernel"].shape[0]
        h = np.zeros((x.shape[0], units))
        y = np.zeros((x.shape[0], units))
        outputs = []
        for t in range(x.shape[1]):
            z = sequence[:, t]
            new_h = np.tanh(z @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"])
            if w["carry_kernel"] is not None:
                c = _sigmoid(
                    z @ w["carry_kernel"]
                    + h @ w["carry_recurrent_kernel"]
                    + w["carry_bias"]
                )
                new_h = c * new_h + (1 - c) * h
            new_y = new_h
            if w["transform_kernel"] is not None:
                g = _sigmoid(z @ w["transform_kernel"] + w["transform_bias"])
                skip = z if w["projection"] is None else z @ w["projection"]
                new_y = g * new_h + (1 - g) * skip
            m = mask[:, t, None]
            h = np.where(m, new_h, h)
            y = np.where(m, new_y, y)
            outputs.append(y)
        sequence = np.stack(outputs, axis=1)
        states.append(h)
    return sequence, states


def _randomize(layer, rng, scale=0.6):
    for w in layer.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * scale)


def _same_weights(ours, theirs, inputs, rng):
    """Builds both layers on `inputs`, randomizes ours and copies its
    weights into theirs (a Keras `SimpleRNN` of the same math)."""
    ours(inputs)
    theirs(inputs)
    _randomize(ours, rng)
    theirs.set_weights(ours.get_weights())


def _padded_batch(rng, batch=5, time=8, features=3):
    x = rng.normal(size=(batch, time, features)).astype("float32")
    lengths = rng.integers(0, time + 1, size=batch)
    lengths[0] = time
    mask = np.arange(time)[None, :] < lengths[:, None]
    x[~mask] = 0.0
    return x, mask


@pytest.mark.parametrize("highway", MODES, ids=MODE_IDS)
def test_contract(rng, tmp_path, highway):
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    assert_layer_contract(
        lambda: HighwayStackedRNN([4, 4], highway=highway, seed=2),
        x,
        (2, 4),
        tmp_path,
    )


def test_contract_sequences_and_state(rng, tmp_path):
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    assert_layer_contract(
        lambda: HighwayStackedRNN(
            [4, 6], highway="both", return_sequences=True, return_state=True
        ),
        x,
        [(2, 5, 6), (2, 4), (2, 6)],
        tmp_path,
    )


@pytest.mark.parametrize(
    "highway,expected",
    [
        (None, ["cell_0/kernel", "cell_0/recurrent_kernel", "cell_0/bias"]),
        (
            "time",
            [
                "carry_kernel_0",
                "carry_recurrent_kernel_0",
                "carry_bias_0",
                "cell_0/kernel",
                "cell_0/recurrent_kernel",
                "cell_0/bias",
            ],
        ),
        (
            "depth",
            [
                "transform_kernel_0",
                "transform_bias_0",
                "projection_0",
                "cell_0/kernel",
                "cell_0/recurrent_kernel",
                "cell_0/bias",
            ],
        ),
    ],
    ids=["plain", "time", "depth"],
)
def test_weights(highway, expected):
    layer = HighwayStackedRNN(4, highway=highway, name="rnn")
    layer.build((None, None, 3))
    assert [w.path.removeprefix("rnn/") for w in layer.weights] == expected


def test_weight_shapes_and_counts():
    layer = HighwayStackedRNN([5, 5, 7], highway="both", gate_bias=-3.0)
    layer.build((None, None, 3))
    w0, w1, w2 = (layer.layer_weights(i) for i in range(3))
    assert w0.projection.shape == (3, 5)
    assert w1.projection is None  # 5 -> 5: the skip path is the identity.
    assert w2.projection.shape == (5, 7)
    assert w2.carry_recurrent_kernel.shape == (7, 7)
    for w in (w0, w1, w2):
        np.testing.assert_array_equal(w.carry_bias.numpy(), -3.0)
        np.testing.assert_array_equal(w.transform_bias.numpy(), -3.0)
    # Per layer: W, U, b; carry W_c, U_c, b_c; transform W_g, b_g; P.
    expected = (
        (3 * 5 + 25 + 5) * 2 + 3 * 5 + 5 + 3 * 5
        + (5 * 5 + 25 + 5) * 2 + 5 * 5 + 5
        + (5 * 7 + 49 + 7) * 2 + 5 * 7 + 7 + 5 * 7
    )
    assert layer.count_params() == expected


def test_golden_numbers_both_gates():
    """One feature, one unit, two steps: every gate by hand."""
    layer = HighwayStackedRNN(
        1, highway="both", return_sequences=True, return_state=True
    )
    layer.build((None, None, 1))
    w = layer.layer_weights(0)
    for variable, value in [
        (w.kernel, 0.8),
        (w.recurrent_kernel, 0.6),
        (w.bias, 0.1),
        (w.carry_kernel, 0.3),
        (w.carry_recurrent_kernel, -0.2),
        (w.carry_bias, -1.0),
        (w.transform_kernel, 0.4),
        (w.transform_bias, -2.0),
    ]:
        variable.assign(np.full(variable.shape, value, "float32"))
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    x1, x2 = 0.5, -1.0
    # t = 1, from h0 = 0.
    c1 = sig(0.3 * x1 - 1.0)
    h1 = c1 * math.tanh(0.8 * x1 + 0.1)
    g1 = sig(0.4 * x1 - 2.0)
    y1 = g1 * h1 + (1 - g1) * x1
    # t = 2.
    c2 = sig(0.3 * x2 - 0.2 * h1 - 1.0)
    h2 = c2 * math.tanh(0.8 * x2 + 0.6 * h1 + 0.1) + (1 - c2) * h1
    g2 = sig(0.4 * x2 - 2.0)
    y2 = g2 * h2 + (1 - g2) * x2
    outputs, state = layer(np.array([[[x1], [x2]]], "float32"))
    np.testing.assert_allclose(outputs[0, :, 0], [y1, y2], atol=1e-7)
    np.testing.assert_allclose(state[0, 0], h2, atol=1e-7)


@pytest.mark.parametrize("highway", MODES, ids=MODE_IDS)
@pytest.mark.parametrize(
    "return_sequences", [False, True], ids=["last", "sequences"]
)
def test_matches_numpy_reference(rng, highway, return_sequences):
    x, mask = _padded_batch(rng)
    layer = HighwayStackedRNN(
        [4, 4, 6],
        highway=highway,
        return_sequences=return_sequences,
        return_state=True,
    )
    layer.build(x.shape)
    _randomize(layer, rng)
    output, *states = layer(x, mask=mask)
    sequence, expected_states = numpy_stack(layer, x, mask)
    expected = sequence if return_sequences else sequence[:, -1]
    np.testing.assert_allclose(output, expected, atol=2e-6)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize(
    "return_sequences", [False, True], ids=["last", "sequences"]
)
def test_plain_single_layer_matches_simple_rnn(rng, return_sequences):
    x, _ = _padded_batch(rng)
    masked = keras.layers.Masking()(x)
    ours = HighwayStackedRNN(5, highway=None, return_sequences=return_sequences)
    theirs = keras.layers.SimpleRNN(5, return_sequences=return_sequences)
    _same_weights(ours, theirs, masked, rng)
    np.testing.assert_allclose(ours(masked), theirs(masked), atol=1e-6)


def test_contract_bidirectional(rng, tmp_path):
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    assert_layer_contract(
        lambda: keras.layers.Bidirectional(
            HighwayStackedRNN([4, 4], highway="both", return_sequences=True)
        ),
        x,
        (2, 5, 8),
        tmp_path,
    )


@pytest.mark.parametrize(
    "return_sequences", [False, True], ids=["last", "sequences"]
)
def test_bidirectional_plain_matches_simple_rnn(rng, return_sequences):
    x, mask = _padded_batch(rng)
    masked = keras.layers.Masking()(x)
    ours = keras.layers.Bidirectional(
        HighwayStackedRNN(5, highway=None, return_sequences=return_sequences)
    )
    theirs = keras.layers.Bidirectional(
        keras.layers.SimpleRNN(5, return_sequences=return_sequences)
    )
    _same_weights(ours, theirs, masked, rng)
    got, want = np.asarray(ours(masked)), np.asarray(theirs(masked))
    if return_sequences:
        # Keras' wrapper zeroes its RNNs' outputs at masked steps; ours
        # carry the last output there. The mask marks those steps.
        got, want = got[mask], want[mask]
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("highway", MODES, ids=MODE_IDS)
def test_go_backwards_reads_each_sequence_backwards(rng, highway):
    x, mask = _padded_batch(rng)
    layer = HighwayStackedRNN(
        [4, 6], highway=highway, go_backwards=True, return_state=True
    )
    output, *states = layer(x, mask=mask)
    _randomize(layer, rng)
    output, *states = layer(x, mask=mask)
    for i, n in enumerate(mask.sum(axis=1)):
        if n == 0:
            for got in (output, *states):
                np.testing.assert_array_equal(got[i], 0.0)
            continue
        reversed_steps = x[i : i + 1, :n][:, ::-1]
        sequence, want = numpy_stack(layer, reversed_steps, np.ones((1, n), bool))
        np.testing.assert_allclose(output[i], sequence[0, -1], atol=2e-6)
        for got, state in zip(states, want):
            np.testing.assert_allclose(got[i], state[0], atol=2e-6)
    compiled = tf.function(layer, jit_compile=True)(x, mask=mask)
    np.testing.assert_allclose(compiled[0], output, atol=1e-5)


def test_initial_state_matches_simple_rnn(rng):
    x, mask = _padded_batch(rng)
    state = rng.normal(size=(len(x), 5)).astype("float32")
    masked = keras.layers.Masking()(x)
    ours = HighwayStackedRNN(5, highway=None, return_sequences=True)
    theirs = keras.layers.SimpleRNN(5, return_sequences=True)
    _same_weights(ours, theirs, masked, rng)
    np.testing.assert_allclose(
        ours(masked, initial_state=[state]),
        theirs(masked, initial_state=[state]),
        atol=1e-6,
    )


def test_initial_state_of_each_layer(rng):
    x, mask = _padded_batch(rng)
    layer = HighwayStackedRNN([4, 6], highway="both", return_state=True)
    initial = [rng.normal(size=(len(x), u)).astype("float32") for u in (4, 6)]
    _, *from_zero = layer(x, mask=mask)
    _, *states = layer(x, mask=mask, initial_state=initial)
    empty = ~mask.any(axis=1)
    for got, zero, start in zip(states, from_zero, initial):
        np.testing.assert_allclose(np.asarray(got)[empty], start[empty])
        assert not np.allclose(np.asarray(got)[~empty], zero[~empty])
    with pytest.raises(ValueError, match=r"one initial state per layer.*"
                       r"\[\(None, 4\), \(None, 6\)\]; got shapes \[\(5, 4\)\]"):
        layer(x, initial_state=initial[:1])


@settings(max_examples=12, deadline=None)
@given(lengths=st.lists(st.integers(0, 7), min_size=1, max_size=4))
def test_padded_equals_unpadded(lengths):
    rng = np.random.default_rng(len(lengths) * 31 + sum(lengths))
    layer = HighwayStackedRNN([4, 6], highway="both", return_state=True)
    layer.build((None, None, 3))
    _randomize(layer, rng)
    time = max(lengths) + 3
    x = np.zeros((len(lengths), time, 3), "float32")
    sequences = [rng.normal(size=(n, 3)).astype("float32") for n in lengths]
    for i, s in enumerate(sequences):
        x[i, : len(s)] = s
    mask = np.arange(time)[None, :] < np.array(lengths)[:, None]
    padded = [o.numpy() for o in layer(x, mask=mask)]
    for i, s in enumerate(sequences):
        alone = [o.numpy()[0] for o in layer(s[None])]
        for got, want in zip(padded, alone):
            np.testing.assert_allclose(got[i], want, atol=1e-6)


def test_zero_length_sequence_keeps_initial_state(rng):
    layer = HighwayStackedRNN([3, 5], highway="both", return_state=True)
    x = rng.normal(size=(2, 4, 2)).astype("float32")
    mask = np.array([[True] * 4, [False] * 4])
    output, *states = layer(x, mask=mask)
    np.testing.assert_array_equal(output[1], 0.0)
    for state in states:
        np.testing.assert_array_equal(state[1], 0.0)
    empty = layer(np.zeros((1, 0, 2), "float32"))
    np.testing.assert_array_equal(empty[0], 0.0)


@pytest.mark.parametrize("source", ["masking", "embedding"])
def test_mask_from_previous_layer_and_propagated(rng, source):
    time = 6
    lengths = np.array([6, 3, 1, 4])
    mask = np.arange(time)[None, :] < lengths[:, None]
    if source == "masking":
        x = rng.normal(size=(4, time, 3)).astype("float32")
        x[~mask] = 0.0
        front = keras.layers.Masking()
        inputs = keras.Input((None, 3))
    else:
        x = rng.integers(1, 10, size=(4, time))
        x[~mask] = 0
        front = keras.layers.Embedding(10, 3, mask_zero=True)
        inputs = keras.Input((None,), dtype="int32")
    first = HighwayStackedRNN(4, highway="depth", return_sequences=True)
    second = HighwayStackedRNN(5, highway="time")
    features = front(inputs)
    model = keras.Model(inputs, second(first(features)))
    got = model(x)
    assert first.compute_mask(None, mask) is mask
    embedded = front(x)
    for i, n in enumerate(lengths):
        alone = second(first(embedded[i : i + 1, :n]))
        np.testing.assert_allclose(got[i : i + 1], alone, atol=1e-6)


def test_dynamic_time_axis(rng):
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, HighwayStackedRNN([4, 4], highway="both")(inputs))
    for time in (1, 5, 17):
        x = rng.normal(size=(2, time, 3)).astype("float32")
        assert model(x).shape == (2, 4)


@pytest.mark.parametrize("highway", MODES, ids=MODE_IDS)
def test_jit_compile(rng, highway):
    x, mask = _padded_batch(rng)
    layer = HighwayStackedRNN([4, 6], highway=highway, return_sequences=True)
    eager = layer(x, mask=mask)
    compiled = tf.function(layer, jit_compile=True)(x, mask=mask)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_jit_compiled_gradients_match_eager(rng):
    x, mask = _padded_batch(rng)
    layer = HighwayStackedRNN([4, 6], highway="both")
    layer.build(x.shape)

    def gradients(x, mask):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, mask=mask) ** 2)
        return tape.gradient(loss, layer.trainable_variables)

    eager = gradients(x, mask)
    compiled = tf.function(gradients, jit_compile=True)(x, mask)
    assert len(eager) == len(layer.trainable_variables)
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs", [{"dropout": 0.5}, {"recurrent_dropout": 0.5}],
    ids=["dropout", "recurrent_dropout"],
)
def test_dropout_only_in_training(rng, kwargs):
    x = rng.normal(size=(8, 6, 3)).astype("float32")
    layer = HighwayStackedRNN([16, 16], seed=4, **kwargs)
    inference = layer(x).numpy()
    np.testing.assert_array_equal(layer(x, training=False), inference)
    assert not np.allclose(layer(x, training=True), inference)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"units": 0}, "`units`, expected a positive integer, got 0"),
        ({"units": []}, "non-empty list"),
        ({"units": [4, -1]}, "got -1"),
        ({"units": 4, "num_layers": 0}, "`num_layers`.*got 0"),
        ({"units": [4, 4], "num_layers": 3}, "2 values for argument `units`"),
        ({"units": 4, "highway": "width"}, "`highway`.*got 'width'"),
        ({"units": 4, "gate_bias": float("nan")}, "`gate_bias`.*finite"),
        ({"units": 4, "dropout": 1.5}, "`dropout`.*got 1.5"),
    ],
    ids=[
        "zero_units",
        "empty_units",
        "negative_units",
        "zero_layers",
        "units_vs_layers",
        "highway",
        "gate_bias",
        "dropout",
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HighwayStackedRNN(**kwargs)


def test_invalid_rank(rng):
    layer = HighwayStackedRNN(4)
    with pytest.raises(ValueError, match=r"rank 3.*got rank 2 .*\(5, 3\)"):
        layer(rng.normal(size=(5, 3)).astype("float32"))


def test_invalid_feature_size(rng):
    layer = HighwayStackedRNN(4)
    layer(rng.normal(size=(2, 5, 3)).astype("float32"))
    with pytest.raises(ValueError, match="built for 3 features.*with 7"):
        layer(rng.normal(size=(2, 5, 7)).astype("float32"))


@pytest.mark.parametrize("highway", MODES, ids=MODE_IDS)
def test_unrolled_equals_loop(rng, highway):
    x, mask = _padded_batch(rng)
    looped = HighwayStackedRNN(
        [4, 6], highway=highway, return_sequences=True, return_state=True,
        unroll=False,
    )
    unrolled = HighwayStackedRNN(
        [4, 6], highway=highway, return_sequences=True, return_state=True,
        unroll=True,
    )
    looped.build(x.shape)
    unrolled.build(x.shape)
    _randomize(looped, rng)
    unrolled.set_weights(looped.get_weights())
    for a, b in zip(looped(x, mask=mask), unrolled(x, mask=mask)):
        np.testing.assert_allclose(a, b, atol=1e-6)

    def gradients(layer):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, mask=mask)[0] ** 2)
        return tape.gradient(loss, layer.trainable_variables)

    for a, b in zip(gradients(looped), gradients(unrolled)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_unroll_needs_a_static_time_axis():
    layer = HighwayStackedRNN(4, unroll=True)
    layer.build((None, None, 3))
    dynamic = tf.function(
        layer, input_signature=[tf.TensorSpec((None, None, 3), tf.float32)]
    )
    with pytest.raises(ValueError, match="`unroll=True` needs a static time"):
        dynamic.get_concrete_function()
    with pytest.raises(ValueError, match="`unroll`.*got 'yes'"):
        HighwayStackedRNN(4, unroll="yes")
