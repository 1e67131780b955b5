"""Small trained classifiers shared by the export tests."""

import keras
import numpy as np

import keras_seqrnn
from keras_seqrnn import data
from keras_seqrnn.datasets import load_japanese_vowels

MAX_LENGTH = 29


def trained_classifier(units=16, num_layers=2, highway="depth", epochs=4,
                       **kwargs):
    """A classifier trained briefly on JapaneseVowels, and its data.

    By default the shape `seqrnn train` builds: both directions, the last
    and mean outputs pooled; `kwargs` go to `build_classifier`.
    """
    kwargs = {"bidirectional": True, "pooling": "last_mean", **kwargs}
    (x_train, y_train), (x_test, y_test) = load_japanese_vowels()
    padded, _ = data.pad(x_train)
    mean, variance = data.feature_statistics(x_train)
    model = keras_seqrnn.build_classifier(
        12,
        9,
        units=units,
        num_layers=num_layers,
        highway=highway,
        feature_mean=mean,
        feature_variance=variance,
        label_names=[str(k) for k in range(1, 10)],
        **kwargs,
    )
    model.compile(keras.optimizers.Adam(1e-2), clip_norm=1.0)
    model.fit(padded, y_train, batch_size=32, epochs=epochs, verbose=0)
    return model, (x_train, y_train), (x_test, y_test)


def random_sequences(rng, count, max_length=MAX_LENGTH, features=12):
    """Variable-length float32 sequences in the data's units."""
    lengths = rng.integers(1, max_length + 1, count)
    return [
        (rng.standard_normal((n, features)) * 3.0).astype(np.float32)
        for n in lengths
    ]


def jittered_sequences(rng, sequences, count, noise=0.1):
    """Fresh sequences from the data's distribution: randomly chosen ones
    with noise of `noise` times each feature's standard deviation added."""
    scale = noise * np.concatenate(sequences).std(axis=0)
    return [
        (sequences[i] + rng.normal(size=sequences[i].shape) * scale).astype(np.float32)
        for i in rng.choice(len(sequences), count, replace=False)
    ]
