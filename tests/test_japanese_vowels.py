import numpy as np
import pytest

from keras_seqrnn.datasets import load_japanese_vowels


@pytest.fixture(scope="module")
def splits():
    return load_japanese_vowels()


@pytest.mark.parametrize(
    "split, size, per_speaker",
    [
        (0, 270, [30] * 9),
        (1, 370, [31, 35, 88, 44, 29, 24, 40, 50, 29]),
    ],
    ids=["train", "test"],
)
def test_split_contents(splits, split, size, per_speaker):
    sequences, labels = splits[split]
    assert len(sequences) == len(labels) == size
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels, minlength=9), per_speaker)
    for sequence in sequences:
        assert sequence.dtype == np.float32
        assert sequence.ndim == 2 and sequence.shape[1] == 12
        assert 7 <= len(sequence) <= 29
        assert np.isfinite(sequence).all()


def test_length_range_and_first_values(splits):
    (x_train, y_train), (x_test, _) = splits
    lengths = [len(sequence) for sequence in x_train + x_test]
    assert (min(lengths), max(lengths)) == (7, 29)
    assert x_train[0].shape == (20, 12)
    assert x_train[0][0, 0] == np.float32(1.860936)
    assert x_train[0][0, 1] == np.float32(-0.207383)
    # Speaker "1" of the file is class 0.
    assert y_train[0] == 0 and y_train[-1] == 8
