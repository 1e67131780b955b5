"""JapaneseVowels speaker recognition dataset."""

import pathlib

import numpy as np

from keras_seqrnn.datasets.ts_format import load_ts

_DATA_DIR = pathlib.Path(__file__).parent / "data"


def load_japanese_vowels() -> tuple[
    tuple[list[np.ndarray], np.ndarray], tuple[list[np.ndarray], np.ndarray]
]:
    """Loads the JapaneseVowels dataset.

    Nine male speakers uttered the Japanese vowels /ae/. Each utterance is a
    sequence of 7 to 29 frames of 12 LPC cepstrum coefficients and the task
    is to identify the speaker. There are 270 training sequences (30 per
    speaker) and 370 test sequences.

    The data come from the UCI Machine Learning Repository (Kudo, Toyama and
    Shimbo, 1999), in the `.ts` format of the UEA & UCR time series
    classification archive, and ship with this package.

    Returns:
        Tuple `((x_train, y_train), (x_test, y_test))`. `x_train` and
        `x_test` are lists of float32 arrays of shape `(length, 12)`;
        `y_train` and `y_test` are int32 arrays of speaker indices in
        `[0, 8]` (speaker `k + 1` in the original data).

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_japanese_vowels()
    >>> len(x_train), x_train[0].shape, int(y_train[0])
    (270, (20, 12), 0)

    References:
        - M. Kudo, J. Toyama and M. Shimbo, "Multidimensional curve
          classification using passing-through regions", Pattern Recognition
          Letters 20(11-13), pp. 1103-1111, 1999.
          https://archive.ics.uci.edu/dataset/128/japanese+vowels
        - A. Bagnall et al., "The UEA multivariate time series classification
          archive, 2018", arXiv:1811.00075. https://timeseriesclassification.com
    """
    train = load_ts(_DATA_DIR / "JapaneseVowels_TRAIN.ts")
    test = load_ts(_DATA_DIR / "JapaneseVowels_TEST.ts")
    return (train.sequences, train.labels), (test.sequences, test.labels)
