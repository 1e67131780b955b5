import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqrnn import HighwayStackedRNN
from keras_seqrnn import SequenceClassifier
from keras_seqrnn import build_classifier
from keras_seqrnn import data


def _sequences(rng, count=12, features=4):
    lengths = rng.integers(1, 9, size=count)
    return [rng.normal(size=(n, features)).astype("float32") for n in lengths]


def _separable(rng, count=64):
    """Two classes that differ in the sign of the mean of feature 0."""
    sequences = _sequences(rng, count=count)
    labels = np.arange(count) % 2
    for sequence, label in zip(sequences, labels):
        sequence[:, 0] += 1.5 if label else -1.5
    return sequences, labels


def test_architecture():
    model = build_classifier(
        4, 3, units=[6, 5], highway="both", feature_mean=[1.0] * 4,
        feature_variance=[4.0] * 4,
    )
    assert isinstance(model, SequenceClassifier)
    assert isinstance(model.rnn, HighwayStackedRNN)
    assert model.rnn.layer_units == [6, 5] and model.rnn.highway == "both"
    assert model.head.kernel.shape == (5, 3)
    assert model.head.name == "logits"
    assert model.standardization.name == "standardization"
    assert build_classifier(4, 3).standardization is None


def test_bidirectional_architecture_and_saving(rng, tmp_path):
    model = build_classifier(4, 3, units=[6, 5], bidirectional=True,
                             pooling="last_mean")
    assert model.stacks == [model.rnn, model.backward_rnn]
    assert model.backward_rnn.go_backwards and not model.rnn.go_backwards
    assert model.backward_rnn.layer_units == [6, 5]
    assert model.head.kernel.shape == (4 * 5, 3)
    config = model.get_config()
    assert SequenceClassifier.from_config(config).get_config() == config
    padded, _ = data.pad(_sequences(rng))
    model.compile(keras.optimizers.Adam(0.01), clip_norm=1.0)
    model.fit(padded, rng.integers(0, 3, len(padded)), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        loaded.predict(padded, verbose=0), model.predict(padded, verbose=0),
        atol=1e-6,
    )


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "both"])
@pytest.mark.parametrize("pooling", ["last", "mean", "last_mean"])
def test_pooling_reads_each_sequence_alone(rng, bidirectional, pooling):
    sequences = _sequences(rng) + [np.zeros((0, 4), "float32")]
    model = build_classifier(4, 3, units=[6, 5], highway="both",
                             bidirectional=bidirectional, pooling=pooling)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.5)
    padded, _ = data.pad(sequences, max_length=11)
    logits = model.compute_logits(padded).numpy()
    kernel, bias = model.head.kernel.numpy(), model.head.bias.numpy()
    for i, sequence in enumerate(sequences):
        features = []
        for rnn in model.stacks:
            outputs = np.zeros((1, 5), "float32")
            if len(sequence):
                outputs = np.asarray(rnn(sequence[None])).reshape(-1, 5)
            if "last" in pooling:
                features.append(outputs[-1])
            if "mean" in pooling:
                features.append(outputs.mean(axis=0))
        want = np.concatenate(features) @ kernel + bias
        np.testing.assert_allclose(logits[i], want, atol=2e-5)


def test_standardization_and_mask_from_raw_inputs(rng):
    sequences = _sequences(rng)
    mean, variance = data.feature_statistics(sequences)
    model = build_classifier(4, 3, units=6, feature_mean=mean,
                             feature_variance=variance)
    padded, lengths = data.pad(sequences)
    mask = model.compute_mask(padded)
    np.testing.assert_array_equal(mask, data.mask_from_lengths(lengths, 8))
    standardized, _ = data.pad(
        [(s - mean) / np.sqrt(variance) for s in sequences], value=0.0
    )
    np.testing.assert_allclose(
        model.compute_logits(padded),
        model.head(model.rnn(standardized, mask=mask)),
        atol=1e-5,
    )


@pytest.mark.parametrize("mask_value", [np.nan, 0.0], ids=["nan", "zero"])
def test_padding_is_only_where_a_sequence_ends(rng, mask_value):
    """Zero steps (and `mask_value` steps) inside a sequence are data."""
    sequences = _sequences(rng, count=6)
    zero = np.zeros((1, 4), "float32")
    for i, s in enumerate(sequences[:4]):
        sequences[i] = np.concatenate([s[:1], zero, s])
    sequences[4] = np.concatenate([zero, zero, sequences[4]])
    model = build_classifier(4, 3, units=6, mask_value=mask_value,
                             bidirectional=True, pooling="last_mean")
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.5)
    padded, lengths = data.pad(sequences, max_length=12, value=mask_value)
    mask = model.compute_mask(padded).numpy()
    np.testing.assert_array_equal(mask, data.mask_from_lengths(lengths, 12))
    probabilities = model.predict(padded, verbose=0)
    for i, sequence in enumerate(sequences):
        alone = model.predict(sequence[None], verbose=0)
        np.testing.assert_allclose(probabilities[i], alone[0], atol=1e-6)


def test_trailing_zeros_are_data_with_nan_padding(rng):
    sequence = np.concatenate(
        [rng.normal(size=(5, 4)), np.zeros((3, 4))]
    ).astype("float32")
    nan_padded = build_classifier(4, 3, units=6)
    zero_padded = build_classifier(4, 3, units=6, mask_value=0.0)
    assert int(nan_padded.sequence_lengths(sequence[None])[0]) == 8
    assert int(zero_padded.sequence_lengths(sequence[None])[0]) == 5


@pytest.mark.parametrize("frame_length", [2, 3], ids=["2", "3"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "both"])
def test_frames_are_consecutive_steps_side_by_side(rng, frame_length,
                                                   bidirectional):
    sequences = _sequences(rng) + [np.zeros((0, 4), "float32")]
    mean, variance = data.feature_statistics(sequences)
    kwargs = dict(units=[6, 5], bidirectional=bidirectional,
                  pooling="last_mean", highway="depth")
    model = build_classifier(4, 3, frame_length=frame_length, feature_mean=mean,
                             feature_variance=variance, **kwargs)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.5)
    # The same weights, fed the frames built by hand.
    unframed = build_classifier(4 * frame_length, 3, **kwargs)
    for stack, twin in zip(model.stacks, unframed.stacks):
        twin.set_weights(stack.get_weights())
    unframed.head.set_weights(model.head.get_weights())
    frames = []
    for s in sequences:
        s = (s - mean) / np.sqrt(variance)
        count = -(-len(s) // frame_length)
        framed = np.zeros((count * frame_length, 4), "float32")
        framed[: len(s)] = s
        frames.append(framed.reshape(count, 4 * frame_length))
    padded, _ = data.pad(sequences, max_length=10)
    np.testing.assert_allclose(
        model.predict(padded, verbose=0),
        unframed.predict(data.pad(frames)[0], verbose=0),
        atol=1e-5,
    )


def test_probabilities_and_padding_invariance(rng):
    sequences = _sequences(rng)
    model = build_classifier(4, 3, units=6, num_layers=2)
    padded, _ = data.pad(sequences, max_length=12)
    probabilities = model.predict(padded, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-6)
    for i, sequence in enumerate(sequences[:4]):
        alone = model.predict(sequence[None], verbose=0)
        np.testing.assert_allclose(probabilities[i], alone[0], atol=1e-6)


def test_fit_logs_grad_norm_and_saves(rng, tmp_path):
    sequences, labels = _separable(rng)
    model = build_classifier(4, 2, units=8, dropout=0.1, seed=1,
                             label_names=["minus", "plus"])
    model.compile(keras.optimizers.Adam(0.02), metrics=["accuracy"],
                  clip_norm=0.5, label_smoothing=0.05)
    dataset = data.bucketed_dataset(sequences, labels, 16, shuffle=True, seed=0)
    batch_logs = []
    history = model.fit(
        dataset,
        epochs=6,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: batch_logs.append((batch, logs)))],
    )
    logs = history.history
    assert {"loss", "accuracy", "grad_norm", "grad_norm_max", "clipped"} <= set(logs)
    assert all({"grad_norm", "clipped"} <= set(b) for _, b in batch_logs)
    assert all(m >= n > 0 for m, n in zip(logs["grad_norm_max"], logs["grad_norm"]))
    # The first step of an epoch: its own norm, clipped exactly when it
    # exceeds clip_norm.
    firsts = [b for i, b in batch_logs if i == 0]
    assert len(firsts) == 6
    assert [f["clipped"] for f in firsts] == [float(f["grad_norm"] > 0.5) for f in firsts]
    assert logs["accuracy"][-1] > 0.85
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SequenceClassifier)
    assert loaded.clip_norm == 0.5 and loaded.label_names == ["minus", "plus"]
    assert loaded.label_smoothing == 0.05
    padded, _ = data.pad(sequences)
    np.testing.assert_allclose(
        loaded.predict(padded, verbose=0),
        model.predict(padded, verbose=0),
        atol=1e-6,
    )


def test_saved_optimizer_state_continues_training_identically(rng, tmp_path):
    sequences, labels = _separable(rng, count=32)
    padded, _ = data.pad(sequences)
    model = build_classifier(4, 2, units=4, num_layers=2)
    model.compile(keras.optimizers.Adam(0.01), clip_norm=1.0)
    model.fit(padded, labels, epochs=2, batch_size=8, shuffle=False, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    for m in (model, loaded):
        m.fit(padded, labels, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_evaluate_has_no_gradient_logs(rng):
    sequences, labels = _separable(rng, count=16)
    model = build_classifier(4, 2, units=4)
    model.compile(metrics=["accuracy"])
    padded, _ = data.pad(sequences)
    logs = model.evaluate(padded, labels, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}


def test_callbacks_take_effect(rng, tmp_path):
    sequences, labels = _separable(rng, count=32)
    padded, _ = data.pad(sequences)
    model = build_classifier(4, 2, units=4)
    model.compile(keras.optimizers.Adam(0.01), metrics=["accuracy"])
    history = model.fit(
        padded, labels, epochs=10, verbose=0,
        callbacks=[
            # No epoch improves the loss by 10: training stops after 2.
            keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10),
            keras.callbacks.ModelCheckpoint(tmp_path / "last.keras"),
            keras.callbacks.TensorBoard(tmp_path / "logs"),
        ],
    )
    assert len(history.history["loss"]) == 2
    saved = keras.saving.load_model(tmp_path / "last.keras")
    for a, b in zip(saved.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    events = next((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))
    tags = {
        value.tag
        for event in tf.compat.v1.train.summary_iterator(str(events))
        for value in event.summary.value
    }
    assert {"epoch_loss", "epoch_grad_norm", "epoch_clipped"} <= tags


@pytest.mark.parametrize("weighting", ["class_weight", "sample_weight"])
def test_class_and_sample_weights_shift_the_prediction(rng, weighting):
    """On labels that the sequences do not predict, weighting class 1 (or
    zeroing class 0's samples) moves the learned prior towards class 1."""
    sequences = _sequences(rng, count=64)
    labels = np.arange(64) % 2
    padded, _ = data.pad(sequences)
    weights = {
        "class_weight": {"class_weight": {0: 1.0, 1: 4.0}},
        "sample_weight": {"sample_weight": (labels == 1).astype("float32")},
    }[weighting]
    priors = []
    for kwargs in ({}, weights):
        model = build_classifier(4, 2, units=4, seed=0)
        model.compile(keras.optimizers.Adam(0.03))
        model.fit(padded, labels, epochs=15, batch_size=16, shuffle=False,
                  verbose=0, **kwargs)
        priors.append(float(model.predict(padded, verbose=0)[:, 1].mean()))
    assert priors[0] < 0.65 and priors[1] > 0.7, priors
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_features": 0, "num_classes": 3}, "`num_features`.*got 0"),
        ({"num_features": 4, "num_classes": 1}, "`num_classes`.*>= 2, got 1"),
        ({"num_features": 4, "num_classes": 3, "highway": "x"}, "`highway`"),
        (
            {"num_features": 4, "num_classes": 3, "mask_value": float("inf")},
            "`mask_value`.*finite float or nan",
        ),
        (
            {"num_features": 2, "num_classes": 3, "feature_mean": [0, 0]},
            "both `feature_mean` and `feature_variance`",
        ),
        (
            {"num_features": 2, "num_classes": 3, "feature_mean": [0, 0],
             "feature_variance": [1, 0]},
            "`feature_variance`, expected positive",
        ),
        (
            {"num_features": 2, "num_classes": 3, "feature_mean": [0],
             "feature_variance": [1]},
            "`feature_mean`, expected 2 finite values",
        ),
        (
            {"num_features": 2, "num_classes": 3, "label_names": ["a"]},
            "`label_names`, expected 3 names",
        ),
        (
            {"num_features": 2, "num_classes": 3, "bidirectional": "yes"},
            "`bidirectional`, expected True or False, got 'yes'",
        ),
        (
            {"num_features": 2, "num_classes": 3, "pooling": "max"},
            "`pooling`, expected one of .*'last_mean'.*got 'max'",
        ),
        (
            {"num_features": 2, "num_classes": 3, "frame_length": 0},
            "`frame_length`, expected a positive integer, got 0",
        ),
    ],
    ids=["features", "classes", "highway", "mask_value", "mean_only",
         "zero_variance", "mean_shape", "label_names", "bidirectional",
         "pooling", "frame_length"],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(**kwargs)


def test_invalid_compile_and_inputs(rng):
    model = build_classifier(4, 3)
    with pytest.raises(ValueError, match="expected `loss=None`"):
        model.compile("adam", loss="mse")
    with pytest.raises(ValueError, match="`clip_norm`.*got -1"):
        model.compile("adam", clip_norm=-1)
    with pytest.raises(ValueError, match="`label_smoothing`.*got 1.0"):
        model.compile("adam", label_smoothing=1.0)
    with pytest.raises(ValueError, match="built for 4 features.*with 5"):
        model(tf.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="rank 3"):
        model(tf.zeros((2, 4)))


def test_input_noise_only_in_training_and_only_on_real_steps(rng, monkeypatch):
    sequences = [s for s in _sequences(rng) if len(s) % 2] or _sequences(rng)[:1]
    padded, _ = data.pad(sequences)
    kwargs = dict(units=5, frame_length=2, seed=3)
    noisy = build_classifier(4, 3, input_noise=0.5, **kwargs)
    plain = build_classifier(4, 3, **kwargs)
    plain.build((None, None, 4))
    plain.set_weights(noisy.get_weights())
    np.testing.assert_array_equal(
        noisy.compute_logits(padded), plain.compute_logits(padded)
    )
    drawn = noisy._input_noise(tf.constant(padded))
    again = noisy._input_noise(tf.constant(padded))
    np.testing.assert_array_equal(drawn, again)  # keyed by (seed, step)
    assert abs(float(tf.math.reduce_std(drawn)) - 0.5) < 0.05
    # A constant "noise" of 3 on the real steps only: the last frame of
    # each odd-length sequence is completed with a noise-free zero step.
    monkeypatch.setattr(noisy, "_input_noise", lambda x: tf.fill(tf.shape(x), 3.0))
    shifted = [s + 3.0 for s in sequences]  # no standardization here
    np.testing.assert_allclose(
        noisy.compute_logits(padded, training=True),
        plain.compute_logits(data.pad(shifted)[0]),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="`input_noise`.*non-negative"):
        build_classifier(4, 3, input_noise=-0.1)
