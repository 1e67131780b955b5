import keras
import numpy as np
import pytest

from keras_seqrnn import HighwayStackedRNN
from keras_seqrnn import build_classifier
from keras_seqrnn import data


def _sequences(rng, count=12, features=4):
    lengths = rng.integers(1, 9, size=count)
    return [rng.normal(size=(n, features)).astype("float32") for n in lengths]


def test_architecture():
    model = build_classifier(4, 3, units=[6, 5], highway="both")
    assert [layer.name for layer in model.layers] == [
        "sequences",
        "masking",
        "rnn",
        "logits",
        "probabilities",
    ]
    rnn = model.get_layer("rnn")
    assert isinstance(rnn, HighwayStackedRNN)
    assert rnn.layer_units == [6, 5] and rnn.highway == "both"
    assert model.get_layer("logits").kernel.shape == (5, 3)
    assert model.input_shape == (None, None, 4)
    assert model.output_shape == (None, 3)


def test_probabilities_and_padding_invariance(rng):
    sequences = _sequences(rng)
    model = build_classifier(4, 3, units=6, num_layers=2)
    padded, _ = data.pad(sequences, max_length=12)
    probabilities = model.predict(padded, verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-6)
    for i, sequence in enumerate(sequences[:4]):
        alone = model.predict(sequence[None], verbose=0)
        np.testing.assert_allclose(probabilities[i], alone[0], atol=1e-6)


def test_fit_learns_and_saves(rng, tmp_path):
    # Two classes that differ only in the sign of the mean of feature 0.
    sequences = _sequences(rng, count=64)
    labels = np.arange(64) % 2
    for sequence, label in zip(sequences, labels):
        sequence[:, 0] += 1.5 if label else -1.5
    model = build_classifier(4, 2, units=8, dropout=0.1, seed=1)
    model.compile(
        keras.optimizers.Adam(0.02),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=True,
    )
    dataset = data.bucketed_dataset(sequences, labels, 16, shuffle=True, seed=0)
    history = model.fit(dataset, epochs=8, shuffle=False, verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    padded, _ = data.pad(sequences)
    np.testing.assert_allclose(
        loaded.predict(padded, verbose=0),
        model.predict(padded, verbose=0),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_features": 0, "num_classes": 3}, "`num_features`.*got 0"),
        ({"num_features": 4, "num_classes": 1}, "`num_classes`.*>= 2, got 1"),
        ({"num_features": 4, "num_classes": 3, "highway": "x"}, "`highway`"),
        (
            {"num_features": 4, "num_classes": 3, "mask_value": float("inf")},
            "`mask_value`.*finite",
        ),
    ],
    ids=["features", "classes", "highway", "mask_value"],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(**kwargs)
