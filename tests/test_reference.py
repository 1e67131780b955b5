import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqrnn import build_classifier
from keras_seqrnn import reference


@pytest.fixture
def float64():
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")


def _problem(rng, batch=6, time=9, features=4, classes=3):
    x = rng.normal(size=(batch, time, features))
    lengths = rng.integers(1, time + 1, size=batch)
    lengths[:2] = [time, 1]
    mask = np.arange(time)[None, :] < lengths[:, None]
    x[~mask] = 0.0
    labels = rng.integers(0, classes, size=batch)
    return x, mask, labels


def _nan_padded(x, mask):
    """The reference reads zero padding and the mask; the model reads
    where its NaN padding starts."""
    return np.where(mask[:, :, None], x, np.nan)


def _model_and_weights(rng, features=4, classes=3, units=5):
    model = build_classifier(features, classes, units=units, highway=None)
    cell = model.get_layer("rnn").cells[0]
    head = model.get_layer("logits")
    for variable in (*cell.weights, *head.weights):
        variable.assign(rng.normal(size=variable.shape) * 0.7)
    weights = {
        "W": cell.kernel,
        "U": cell.recurrent_kernel,
        "b": cell.bias,
        "V": head.kernel,
        "B": head.bias,
    }
    return model, weights


def _relative_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def test_forward_matches_keras_model(rng, float64):
    x, mask, _ = _problem(rng)
    model, weights = _model_and_weights(rng)
    probabilities, states = reference.forward(
        x, **{k: v.numpy() for k, v in weights.items()}, mask=mask
    )
    assert states.shape == (6, 10, 5)
    np.testing.assert_array_equal(states[:, 0], 0.0)
    assert _relative_error(probabilities, model(_nan_padded(x, mask)).numpy()) < 1e-12


def test_bptt_matches_gradient_tape(rng, float64):
    x, mask, labels = _problem(rng)
    model, weights = _model_and_weights(rng)
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, model(_nan_padded(x, mask))
        )
        loss = tf.reduce_mean(loss)
    tape_grads = dict(zip(weights, tape.gradient(loss, list(weights.values()))))
    numpy_weights = {k: v.numpy() for k, v in weights.items()}
    grads = reference.bptt_gradients(x, labels, **numpy_weights, mask=mask)
    assert sorted(grads) == ["dE/dB", "dE/dU", "dE/dV", "dE/dW", "dE/db"]
    for name, tape_grad in tape_grads.items():
        got = grads[f"dE/d{name}"]
        assert got.shape == numpy_weights[name].shape
        assert _relative_error(got, tape_grad.numpy()) < 1e-6, name
    probabilities, _ = reference.forward(x, **numpy_weights, mask=mask)
    assert reference.cross_entropy(probabilities, labels) == pytest.approx(
        float(loss), rel=1e-12
    )


def test_bptt_matches_finite_differences(rng):
    x, mask, labels = _problem(rng, batch=3, time=5, features=2, classes=2)
    weights = {
        "W": rng.normal(size=(2, 3)),
        "U": rng.normal(size=(3, 3)),
        "b": rng.normal(size=3),
        "V": rng.normal(size=(3, 2)),
        "B": rng.normal(size=2),
    }
    grads = reference.bptt_gradients(x, labels, **weights, mask=mask)

    def loss():
        probabilities, _ = reference.forward(x, **weights, mask=mask)
        return reference.cross_entropy(probabilities, labels)

    eps = 1e-6
    for name, value in weights.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            value[index] += eps
            up = loss()
            value[index] -= 2 * eps
            down = loss()
            value[index] += eps
            numeric[index] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[f"dE/d{name}"], numeric, atol=1e-7)


def test_masked_steps_carry_the_state(rng):
    x, mask, _ = _problem(rng)
    weights = {
        "W": rng.normal(size=(4, 5)),
        "U": rng.normal(size=(5, 5)),
        "b": rng.normal(size=5),
        "V": rng.normal(size=(5, 3)),
        "B": rng.normal(size=3),
    }
    _, states = reference.forward(x, **weights, mask=mask)
    lengths = mask.sum(axis=1)
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(
            states[i, n:], np.broadcast_to(states[i, n], states[i, n:].shape)
        )


@pytest.mark.parametrize(
    "x_shape,mask_shape,message",
    [((4, 5), None, "3D array"), ((2, 4, 3), (2, 5), r"`mask` expected shape")],
    ids=["rank", "mask_shape"],
)
def test_invalid_inputs(x_shape, mask_shape, message):
    weights = [np.ones((3, 2)), np.ones((2, 2)), np.ones(2)]
    weights += [np.ones((2, 2)), np.ones(2)]
    mask = None if mask_shape is None else np.ones(mask_shape, bool)
    with pytest.raises(ValueError, match=message):
        reference.forward(np.ones(x_shape), *weights, mask=mask)
