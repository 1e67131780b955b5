import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

import keras_seqrnn
from keras_seqrnn.estimator import to_sequences

FAST = dict(units=8, num_layers=1, epochs=6, batch_size=8, learning_rate=0.03)


def _collection(rng, count=36, channels=2, length=20):
    """Two classes that differ in the sign of channel 0's mean."""
    y = np.where(np.arange(count) % 2, "up", "down")
    X = rng.normal(size=(count, channels, length)) * 0.3
    X[:, 0] += np.where(y == "up", 1.0, -1.0)[:, None]
    return X, y


def test_fit_predict_score_and_fitted_attributes(rng):
    X, y = _collection(rng)
    classifier = keras_seqrnn.SeqRNNClassifier(**FAST)
    assert classifier.fit(X, y) is classifier
    assert list(classifier.classes_) == ["down", "up"]
    assert classifier.n_classes_ == 2 and classifier.n_channels_ == 2
    assert classifier.plan_.units == 8 and classifier.plan_.epochs == 6
    # Settings left "auto" come from the plan.
    assert classifier.plan_.frame_length == 1
    assert "frame_length" in classifier.plan_reasons_
    assert len(classifier.history_) == 6
    probabilities = classifier.predict_proba(X)
    assert probabilities.shape == (36, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(classifier.predict(X)) <= {"down", "up"}
    assert classifier.score(X, y) > 0.9
    assert classifier.model_.label_names == ["down", "up"]


def test_unequal_lengths_as_a_list_and_univariate_2d(rng):
    X, y = _collection(rng, channels=1)
    ragged = [x[:, : rng.integers(8, 21)] for x in X]
    classifier = keras_seqrnn.SeqRNNClassifier(**FAST).fit(ragged, y)
    assert classifier.predict(ragged).shape == (36,)
    # A 2D array is univariate; the same series give the same answer.
    np.testing.assert_allclose(
        classifier.predict_proba(X[:, 0]), classifier.predict_proba(X),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="fitted on 1"):
        classifier.predict_proba(np.zeros((2, 3, 5)))


def test_clone_and_cross_val_score(rng):
    X, y = _collection(rng)
    classifier = keras_seqrnn.SeqRNNClassifier(**FAST, random_state=3)
    copy = clone(classifier)
    assert copy.get_params() == classifier.get_params()
    assert copy.get_params()["highway"] == "auto"
    copy.set_params(units=4)
    assert copy.units == 4 and classifier.units == 8
    scores = cross_val_score(classifier, X, y, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.8


def test_to_sequences_padding_and_missing_values():
    X = np.array([[[1.0, np.nan, 3.0, np.nan, np.nan]],
                  [[1.0, 2.0, 3.0, 4.0, 5.0]]])
    with pytest.raises(ValueError, match="Case 0: step 2, dimension 1 is missing"):
        to_sequences(X)
    first, second = to_sequences(X, "interpolate")
    # The trailing NaNs are padding; the inner one is filled.
    np.testing.assert_array_equal(first[:, 0], [1, 2, 3])
    assert second.shape == (5, 1)
    with pytest.raises(ValueError, match="Case 1 has no value"):
        to_sequences(np.array([[[1.0]], [[np.nan]]]))
    with pytest.raises(ValueError, match="shape"):
        to_sequences(np.zeros((2, 2, 2, 2)))


def test_invalid_settings_and_unfitted(rng):
    X, y = _collection(rng, count=8)
    with pytest.raises(ValueError, match="`units`, expected a positive integer"):
        keras_seqrnn.SeqRNNClassifier(units=0).fit(X, y)
    with pytest.raises(ValueError, match="single class"):
        keras_seqrnn.SeqRNNClassifier(**FAST).fit(X, ["a"] * 8)
    with pytest.raises(NotFittedError):
        keras_seqrnn.SeqRNNClassifier().predict(X)
