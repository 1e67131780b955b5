"""`SeqRNNClassifier`: the recipe as a scikit-learn / aeon estimator."""

import time

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from keras_seqrnn import data
from keras_seqrnn import recipe
from keras_seqrnn import training_plan
from keras_seqrnn.datasets import missing_values

AUTO = "auto"


class SeqRNNClassifier(ClassifierMixin, BaseEstimator):
    """A recurrent time-series classifier that plans its own training.

    `fit(X, y)` runs `keras_seqrnn.fit_classifier` with the plan
    `keras_seqrnn.plan_training` derives from the training data, as
    `seqrnn train` does. Every plan setting is a parameter: `"auto"` (the
    default) lets the plan choose it, any other value overrides it. It
    follows scikit-learn's estimator contract (`get_params`/`set_params`,
    so `sklearn.base.clone`, `cross_val_score` and grid searches work;
    `fit` returns `self`; fitted attributes end in `_`) and aeon's data
    conventions.

    Args:
        frame_length: steps one recurrent step reads. Default: `"auto"`.
        units: state size. Default: `"auto"`.
        num_layers: stacked layers. Default: `"auto"`.
        highway: `"depth"`, `"time"`, `"both"` or None. Default: `"auto"`.
        bidirectional: Default: `"auto"`.
        pooling: `"last"`, `"mean"` or `"last_mean"`. Default: `"auto"`.
        dropout: Default: `"auto"`.
        input_noise: Default: `"auto"`.
        random_crop: Default: `"auto"`.
        label_smoothing: Default: `"auto"`.
        weight_decay: Default: `"auto"`.
        learning_rate: Default: `"auto"`.
        batch_size: Default: `"auto"`.
        epochs: Default: `"auto"`.
        clip_norm: a positive float or None. Default: `"auto"`.
        validation_split: Default: `"auto"`.
        missing: what a NaN inside a series is: `"error"` (a `ValueError`
            naming the case, step and channel), `"interpolate"` or
            `"ffill"` (`keras_seqrnn.datasets.fill_missing`). NaN steps at
            the end of a series are padding, its end. Default: `"error"`.
        random_state: integer seed of the plan. Default: `0`.
        verbose: Keras' `fit` verbosity. Default: `0`.

    Data:
        `X` as aeon takes a collection: a 3D array `(n_cases, n_channels,
        n_timepoints)`, a 2D array `(n_cases, n_timepoints)` (univariate),
        or a list of 2D arrays `(n_channels, n_timepoints)` of different
        lengths. `y` holds any labels (strings, numbers); `classes_` keeps
        them, sorted.

    Fitted attributes:
        classes_: the class labels.
        n_classes_: their number.
        n_channels_: channels per step.
        model_: the trained `keras_seqrnn.SequenceClassifier` (export it
            with `export.to_tflite`).
        plan_: the `keras_seqrnn.TrainingPlan` it ran.
        plan_reasons_: what in the data chose each derived setting.
        history_: one dict per epoch.
        fit_time_: seconds `fit` took.

    Example:

    ```python
    from sklearn.model_selection import cross_val_score

    classifier = keras_seqrnn.SeqRNNClassifier()
    classifier.fit(X_train, y_train)  # X_train: (n_cases, n_channels, n_timepoints)
    accuracy = classifier.score(X_test, y_test)
    scores = cross_val_score(keras_seqrnn.SeqRNNClassifier(epochs=50), X, y, cv=3)
    ```
    """

    def __init__(
        self,
        frame_length=AUTO,
        units=AUTO,
        num_layers=AUTO,
        highway=AUTO,
        bidirectional=AUTO,
        pooling=AUTO,
        dropout=AUTO,
        input_noise=AUTO,
        random_crop=AUTO,
        label_smoothing=AUTO,
        weight_decay=AUTO,
        learning_rate=AUTO,
        batch_size=AUTO,
        epochs=AUTO,
        clip_norm=AUTO,
        validation_split=AUTO,
        missing="error",
        random_state=0,
        verbose=0,
    ):
        self.frame_length = frame_length
        self.units = units
        self.num_layers = num_layers
        self.highway = highway
        self.bidirectional = bidirectional
        self.pooling = pooling
        self.dropout = dropout
        self.input_noise = input_noise
        self.random_crop = random_crop
        self.label_smoothing = label_smoothing
        self.weight_decay = weight_decay
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.clip_norm = clip_norm
        self.validation_split = validation_split
        self.missing = missing
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y) -> "SeqRNNClassifier":
        start = time.perf_counter()
        sequences = to_sequences(X, self.missing)
        y = np.asarray(y)
        if y.shape != (len(sequences),):
            raise ValueError(
                f"Expected one label per case ({len(sequences)}), got y of "
                f"shape {y.shape}."
            )
        self.classes_, labels = np.unique(y, return_inverse=True)
        self.n_classes_ = len(self.classes_)
        self.n_channels_ = sequences[0].shape[1]
        overrides = {
            name: value
            for name, value in self.get_params().items()
            if name in _PLAN_FIELDS and not _is_auto(value)
        }
        self.plan_, self.plan_reasons_ = training_plan.plan_training(
            sequences, labels, self.n_classes_,
            seed=int(self.random_state), **overrides,
        )
        result = recipe.fit_classifier(
            sequences,
            labels,
            self.plan_,
            label_names=[str(c) for c in self.classes_],
            verbose=self.verbose,
        )
        self.model_ = result.model
        self.history_ = result.history
        self.fit_time_ = time.perf_counter() - start
        return self

    def predict_proba(self, X) -> np.ndarray:
        """`(n_cases, n_classes_)` class probabilities, columns in
        `classes_` order."""
        check_is_fitted(self, "model_")
        sequences = to_sequences(X, self.missing)
        if sequences[0].shape[1] != self.n_channels_:
            raise ValueError(
                f"X has {sequences[0].shape[1]} channels; the classifier was "
                f"fitted on {self.n_channels_}."
            )
        padded, _ = data.pad(sequences)
        return np.asarray(self.model_.predict(padded, verbose=0, batch_size=256))

    def predict(self, X) -> np.ndarray:
        """The most probable class of every case, from `classes_`."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]


_PLAN_FIELDS = {
    f.name for f in training_plan.TrainingPlan.__dataclass_fields__.values()
} - {"seed"}


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == AUTO


def to_sequences(X, missing: str = "error") -> list[np.ndarray]:
    """An aeon collection as a list of `(length, channels)` float32 series.

    Args:
        X: a 3D array `(n_cases, n_channels, n_timepoints)`, a 2D array
            `(n_cases, n_timepoints)`, or a list of `(n_channels,
            n_timepoints)` arrays.
        missing: the policy for NaN inside a series (see
            `SeqRNNClassifier`); NaN steps at a series' end are padding.

    Returns:
        The series, time first, finite.

    Raises:
        ValueError: another shape, a case with no value, mixed channel
            counts, or a missing value under `missing="error"`.
    """
    missing_values.check_policy(missing)
    if isinstance(X, np.ndarray):
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3:
            raise ValueError(
                "Expected X as (n_cases, n_channels, n_timepoints), "
                f"(n_cases, n_timepoints) or a list of (n_channels, "
                f"n_timepoints) arrays, got an array of shape {X.shape}."
            )
    if len(X) == 0:
        raise ValueError("X holds no case.")
    sequences = []
    for case, series in enumerate(X):
        series = np.asarray(series, np.float64)
        if series.ndim != 2:
            raise ValueError(
                f"Case {case} has shape {series.shape}; expected (n_channels, "
                "n_timepoints)."
            )
        if series.shape[0] != np.shape(X[0])[0]:
            raise ValueError(
                f"Case {case} has {series.shape[0]} channels, case 0 has "
                f"{np.shape(X[0])[0]}."
            )
        steps = series.T
        known = np.flatnonzero(~np.isnan(steps).all(axis=1))
        if not known.size:
            raise ValueError(f"Case {case} has no value (all NaN).")
        steps = steps[: known[-1] + 1]
        if np.isinf(steps).any():
            raise ValueError(f"Case {case} holds an infinite value.")
        try:
            sequences.append(missing_values.fill_missing(steps, missing))
        except missing_values.MissingValueError as error:
            raise ValueError(f"Case {case}: {error}") from None
    return sequences
