import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras
from keras_seqrnn import build_classifier
from keras_seqrnn import data
from keras_seqrnn import training


def _ce(logits, label):
    shifted = logits - logits.max()
    return np.log(np.exp(shifted).sum()) - shifted[label]


def test_loss_averages_real_sequences_only(rng):
    logits = rng.normal(size=(5, 3)).astype("float32")
    labels = np.array([0, 2, 1, 1, 0])
    real = np.array([1, 1, 0, 1, 0], "float32")
    weights = np.array([0.5, 2.0, 9.0, 1.0, 9.0], "float32")
    got = training.classification_loss(labels, logits, real, weights)
    want = (0.5 * _ce(logits[0], 0) + 2 * _ce(logits[1], 2) + _ce(logits[3], 1)) / 3
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert float(training.classification_loss(labels, logits, 0 * real)) == 0.0


def test_label_smoothing_spreads_the_target(rng):
    logits = rng.normal(size=(4, 5)).astype("float32")
    labels = np.array([0, 4, 2, 2])
    real = np.array([1, 1, 1, 0], "float32")
    got = training.classification_loss(labels, logits, real, label_smoothing=0.2)
    want = 0.0
    for row, label in zip(logits[:3], labels[:3]):
        log_p = row - row.max() - np.log(np.exp(row - row.max()).sum())
        target = np.full(5, 0.2 / 5)
        target[label] += 0.8
        want += -(target * log_p).sum() / 3
    np.testing.assert_allclose(got, want, rtol=1e-5)
    plain = training.classification_loss(labels, logits, real)
    assert float(training.classification_loss(labels, logits, real, label_smoothing=0.0)) == float(plain)


def test_loss_is_stable_for_huge_logits():
    logits = tf.constant([[1e4, -1e4, 0.0]])
    loss = training.classification_loss([1], logits, tf.ones([1]))
    np.testing.assert_allclose(loss, 2e4, rtol=1e-6)


def test_clip_gradients(rng):
    grads = [tf.constant(rng.normal(size=s).astype("float32")) for s in [(3, 4), (4,)]]
    norm = np.sqrt(sum(np.sum(g.numpy() ** 2) for g in grads))
    clipped, reported, fired = training.clip_gradients(grads, norm / 4)
    np.testing.assert_allclose(reported, norm, rtol=1e-6)
    np.testing.assert_allclose(tf.linalg.global_norm(clipped), norm / 4, rtol=1e-5)
    assert float(fired) == 1.0
    same, _, fired = training.clip_gradients(grads, norm * 2)
    assert float(fired) == 0.0
    for a, b in zip(same, grads):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    unclipped, reported, fired = training.clip_gradients(grads, None)
    assert unclipped is grads and float(fired) == 0.0


@pytest.mark.parametrize("clip_norm", [0.01, 0.3], ids=["tight", "loose"])
def test_applied_update_never_exceeds_clip_norm(rng, clip_norm):
    sequences = [rng.normal(size=(n, 4)).astype("float32") * 30 for n in (5, 3, 8, 2)]
    padded, _ = data.pad(sequences)
    labels = np.array([0, 1, 2, 1])
    model = build_classifier(4, 3, units=16, num_layers=2, highway="both")
    model.compile(keras.optimizers.SGD(1.0), clip_norm=clip_norm)
    for _ in range(3):
        before = [v.numpy() for v in model.trainable_variables]
        result = training.train_step(model, padded, labels, clip_norm=clip_norm)
        update = np.sqrt(sum(
            np.sum((v.numpy() - b) ** 2)
            for v, b in zip(model.trainable_variables, before)
        ))
        assert float(result.grad_norm) > clip_norm
        assert float(result.clipped) == 1.0
        assert update <= clip_norm * (1 + 1e-5)


@settings(max_examples=8, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=2, max_size=6),
       extra_rows=st.integers(0, 3))
def test_masked_loss_equals_unpadded_loss(lengths, extra_rows):
    rng = np.random.default_rng(sum(lengths) * 7 + extra_rows)
    sequences = [rng.normal(size=(n, 3)).astype("float32") for n in lengths]
    labels = rng.integers(0, 2, size=len(lengths) + extra_rows)
    model = build_classifier(3, 2, units=5, num_layers=2, highway="time")
    # Padding rows (all padding) must count for nothing.
    padded, _ = data.pad(sequences + [np.zeros((0, 3), "float32")] * extra_rows,
                         max_length=12)
    logits = model.compute_logits(padded)
    real = training.real_sequences(model.compute_mask(padded))
    loss = training.classification_loss(labels, logits, real)
    alone = [
        training.classification_loss(
            labels[i : i + 1], model.compute_logits(s[None]), tf.ones([1])
        )
        for i, s in enumerate(sequences)
    ]
    np.testing.assert_allclose(loss, np.mean(alone), rtol=1e-5)


def test_train_step_matches_gradient_tape_by_hand(rng):
    sequences = [rng.normal(size=(n, 4)).astype("float32") for n in (5, 3, 8)]
    padded, _ = data.pad(sequences)
    labels = np.array([0, 1, 1])
    model = build_classifier(4, 2, units=6)
    model.compile(keras.optimizers.SGD(0.1))
    start = [v.numpy() for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        probabilities = model(padded)
        loss = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
        loss = tf.reduce_mean(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    result = training.train_step(model, padded, labels)
    np.testing.assert_allclose(result.loss, loss, rtol=1e-5)
    np.testing.assert_allclose(result.grad_norm, tf.linalg.global_norm(grads), rtol=1e-4)
    for v, s, g in zip(model.trainable_variables, start, grads):
        np.testing.assert_allclose(v.numpy(), s - 0.1 * g.numpy(), atol=1e-6)
