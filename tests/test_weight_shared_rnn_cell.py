import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_seqrnn import WeightSharedRNNCell
from tests.layer_checks import assert_layer_contract


def _rnn(**kwargs):
    return keras.layers.RNN(WeightSharedRNNCell(5, seed=3), **kwargs)


def _random_padded(rng, batch=4, time=9, features=3):
    x = rng.normal(size=(batch, time, features)).astype("float32")
    lengths = rng.integers(0, time + 1, size=batch)
    lengths[0] = time
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0
    return x, lengths


def test_contract_inside_rnn(rng, tmp_path):
    x = rng.normal(size=(2, 6, 3)).astype("float32")
    assert_layer_contract(_rnn, x, (2, 5), tmp_path)


def test_weights_and_shapes():
    cell = WeightSharedRNNCell(5)
    cell.build((None, 3))
    assert [w.name for w in cell.weights] == [
        "kernel",
        "recurrent_kernel",
        "bias",
    ]
    assert [tuple(w.shape) for w in cell.weights] == [(3, 5), (5, 5), (5,)]
    assert cell.state_size == 5 and cell.output_size == 5
    state = cell.get_initial_state(batch_size=4)
    assert tuple(state[0].shape) == (4, 5)
    assert not np.any(state[0])


def test_no_bias():
    cell = WeightSharedRNNCell(5, use_bias=False)
    cell.build((None, 3))
    assert [w.name for w in cell.weights] == ["kernel", "recurrent_kernel"]


def test_recurrent_kernel_is_orthogonal_by_default():
    cell = WeightSharedRNNCell(6)
    cell.build((None, 2))
    u = cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(u @ u.T, np.eye(6), atol=1e-5)


def test_one_step_matches_formula(rng):
    cell = WeightSharedRNNCell(4)
    x = rng.normal(size=(3, 2)).astype("float32")
    h = rng.normal(size=(3, 4)).astype("float32")
    cell.build((None, 2))
    cell.bias.assign(rng.normal(size=4).astype("float32"))
    out, [state] = cell(x, [h])
    w, u, b = cell.get_weights()
    np.testing.assert_allclose(out, np.tanh(x @ w + h @ u + b), atol=1e-6)
    np.testing.assert_array_equal(out, state)


@pytest.mark.parametrize(
    "return_sequences,masked",
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["last", "sequences", "last_masked", "sequences_masked"],
)
def test_matches_keras_simple_rnn(rng, return_sequences, masked):
    x, _ = _random_padded(rng)
    ours = _rnn(return_sequences=return_sequences, return_state=True)
    theirs = keras.layers.SimpleRNN(
        5, return_sequences=return_sequences, return_state=True
    )
    inputs = keras.layers.Masking()(x) if masked else x
    ours(inputs)
    theirs(inputs)
    weights = [rng.normal(size=w.shape) * 0.5 for w in ours.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(ours.get_weights())
    for a, b in zip(ours(inputs), theirs(inputs)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # And back: SimpleRNNCell weights load into ours.
    theirs.set_weights([w * 0.9 for w in weights])
    ours.set_weights(theirs.get_weights())
    for a, b in zip(ours(inputs), theirs(inputs)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_stacked_rnn_cells(rng):
    x, _ = _random_padded(rng)
    ours = keras.layers.RNN(
        keras.layers.StackedRNNCells(
            [WeightSharedRNNCell(5), WeightSharedRNNCell(2)]
        )
    )
    theirs = keras.layers.RNN(
        keras.layers.StackedRNNCells(
            [keras.layers.SimpleRNNCell(5), keras.layers.SimpleRNNCell(2)]
        )
    )
    inputs = keras.layers.Masking()(x)
    ours(inputs)
    theirs(inputs)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(inputs), theirs(inputs), atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(0, 8), min_size=1, max_size=5))
def test_padded_equals_unpadded(lengths):
    rng = np.random.default_rng(sum(lengths) + len(lengths))
    layer = _rnn()
    sequences = [
        rng.normal(size=(n, 3)).astype("float32") + 1.0 for n in lengths
    ]
    x = np.zeros((len(lengths), max(lengths) + 2, 3), "float32")
    for i, s in enumerate(sequences):
        x[i, : len(s)] = s
    padded = layer(keras.layers.Masking()(x)).numpy()
    for i, s in enumerate(sequences):
        alone = layer(s[None]).numpy()[0] if len(s) else np.zeros(5)
        np.testing.assert_allclose(padded[i], alone, atol=1e-6)


def test_jit_compile(rng):
    x, _ = _random_padded(rng)
    layer = _rnn(return_sequences=True)
    mask = np.any(x != 0, axis=-1)
    eager = layer(x, mask=mask)
    compiled = tf.function(layer, jit_compile=True)(x, mask=mask)
    np.testing.assert_allclose(compiled, eager, atol=1e-6)


@pytest.mark.parametrize(
    "dropout,recurrent_dropout",
    [(0.5, 0.0), (0.0, 0.5)],
    ids=["dropout", "recurrent_dropout"],
)
def test_dropout_only_in_training(rng, dropout, recurrent_dropout):
    x = rng.normal(size=(8, 6, 3)).astype("float32")
    layer = keras.layers.RNN(
        WeightSharedRNNCell(
            16, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=1
        )
    )
    inference = layer(x).numpy()
    np.testing.assert_array_equal(inference, layer(x, training=False))
    assert not np.allclose(layer(x, training=True), inference)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"units": 0}, "`units`, expected a positive integer, got 0"),
        ({"units": -3}, "got -3"),
        ({"units": 2.5}, "got 2.5"),
        ({"units": 4, "dropout": 1.0}, "`dropout`, expected a float in"),
        ({"units": 4, "recurrent_dropout": -0.1}, "`recurrent_dropout`"),
    ],
    ids=["zero_units", "negative_units", "float_units", "dropout", "rdropout"],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WeightSharedRNNCell(**kwargs)
