import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_seqrnn import data as data_lib
from keras_seqrnn.data import bucketed_dataset
from keras_seqrnn.data import mask_from_lengths
from keras_seqrnn.data import pad
from keras_seqrnn.datasets import load_japanese_vowels


def random_sequences(lengths, features=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, features)).astype("float32") for n in lengths]


def collect(dataset):
    """Returns the ids (labels) and the padded batches of one epoch."""
    batches = [(x.numpy(), y.numpy()) for x, y in dataset]
    return np.concatenate([ids for _, ids in batches]), batches


def check_epoch(dataset, sequences, pad_value=np.nan):
    """Checks every sequence appears once, padded to its batch's longest."""
    ids, batches = collect(dataset)
    np.testing.assert_array_equal(np.sort(ids), np.arange(len(sequences)))
    for padded, batch_ids in batches:
        lengths = [len(sequences[i]) for i in batch_ids]
        assert padded.shape[1] == max(lengths)
        for row, i, length in zip(padded, batch_ids, lengths):
            np.testing.assert_array_equal(row[:length], sequences[i])
            np.testing.assert_array_equal(
                row[length:], np.full_like(row[length:], pad_value)
            )
    return ids


@settings(max_examples=50, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 6), min_size=1, max_size=6),
    features=st.integers(1, 3),
    extra=st.integers(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_pad_round_trip(lengths, features, extra, seed):
    sequences = random_sequences(lengths, features, seed)
    max_length = max(lengths) + extra
    padded, padded_lengths = pad(sequences, max_length=max_length, value=-2.0)
    assert padded.shape == (len(lengths), max_length, features)
    assert padded.dtype == np.float32 and padded_lengths.dtype == np.int32
    np.testing.assert_array_equal(padded_lengths, lengths)
    mask = mask_from_lengths(padded_lengths, max_length)
    for row, row_mask, sequence in zip(padded, mask, sequences):
        np.testing.assert_array_equal(row[row_mask], sequence)
        assert (row[~row_mask] == -2.0).all()


def test_pad_defaults_to_longest_and_casts():
    sequences = [np.arange(6).reshape(3, 2), np.arange(2).reshape(1, 2)]
    padded, lengths = pad(sequences, value=0, dtype="int32")
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(lengths, [3, 1])
    np.testing.assert_array_equal(padded[1], [[0, 1], [0, 0], [0, 0]])


def test_pad_accepts_padded_array():
    x = np.random.default_rng(1).normal(size=(4, 5, 2))
    padded, lengths = pad(x, max_length=7)
    np.testing.assert_array_equal(lengths, [5] * 4)
    np.testing.assert_allclose(padded[:, :5], x.astype("float32"))
    assert np.isnan(padded[:, 5:]).all()


@pytest.mark.parametrize(
    "sequences, max_length, message",
    [
        ([], None, "expected at least one sequence"),
        (np.zeros((2, 3)), None, "got an array of shape (2, 3)"),
        ([np.ones((2, 3)), np.ones(3)], None, "got shape (3,) for sequence 1"),
        (
            [np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4))],
            None,
            "expected 3 features (as in sequence 0), got 4 for sequence 2",
        ),
        (
            [np.ones((2, 3)), np.array([[0.0, np.nan, 1.0]])],
            None,
            "NaN or infinity in sequence 1",
        ),
        ([np.full((1, 1), np.inf)], None, "NaN or infinity in sequence 0"),
        (
            [np.ones((2, 3)), np.ones((5, 3))],
            4,
            "sequence 1 has length 5, longer than `max_length=4`",
        ),
        ([np.ones((2, 3))], -1, "non-negative integer, got -1"),
        ([np.ones((2, 3))], 2.0, "non-negative integer, got 2.0"),
    ],
    ids=[
        "empty",
        "2d_array",
        "not_2d",
        "features_differ",
        "nan",
        "inf",
        "longer_than_max_length",
        "negative_max_length",
        "float_max_length",
    ],
)
def test_pad_errors(sequences, max_length, message):
    with pytest.raises(ValueError) as info:
        pad(sequences, max_length=max_length)
    assert message in str(info.value)


def test_mask_from_lengths():
    mask = mask_from_lengths(np.array([2, 0, 3]), max_length=3)
    assert mask.dtype == bool
    np.testing.assert_array_equal(
        mask, [[True, True, False], [False, False, False], [True, True, True]]
    )


@pytest.mark.parametrize(
    "lengths, max_length, message",
    [
        ([1, -1], 3, "got -1 at index 1"),
        ([1, 2, 4], 3, "values in [0, max_length=3], got 4 at index 2"),
        ([1.5], 3, "1-D array of integers"),
        ([[1]], 3, "1-D array of integers"),
        ([1], -2, "`max_length`, expected a non-negative integer, got -2"),
    ],
    ids=["negative", "too_long", "float", "2d", "negative_max_length"],
)
def test_mask_from_lengths_errors(lengths, max_length, message):
    with pytest.raises(ValueError) as info:
        mask_from_lengths(lengths, max_length)
    assert message in str(info.value)


@settings(max_examples=20, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 12), min_size=1, max_size=40),
    batch_size=st.integers(1, 8),
    shuffle=st.booleans(),
)
def test_bucketed_dataset_yields_each_sequence_once(
    lengths, batch_size, shuffle
):
    sequences = random_sequences(lengths)
    dataset = bucketed_dataset(
        sequences,
        np.arange(len(sequences)),
        batch_size=batch_size,
        shuffle=shuffle,
        seed=3,
        pad_value=-1.0,
    )
    check_epoch(dataset, sequences, pad_value=-1.0)


def test_bucketed_dataset_element_spec_and_unlabelled_batches():
    sequences = random_sequences([3, 7, 1, 4], features=5)
    labelled = bucketed_dataset(sequences, np.arange(4, dtype="int32"))
    x_spec, y_spec = labelled.element_spec
    assert x_spec == tf.TensorSpec((None, None, 5), tf.float32)
    assert y_spec == tf.TensorSpec((None,), tf.int32)
    unlabelled = bucketed_dataset(sequences, batch_size=4)
    assert unlabelled.element_spec == x_spec
    (batch,) = list(unlabelled)
    np.testing.assert_array_equal(batch, pad(sequences)[0])


def test_bucketed_dataset_respects_bucket_boundaries():
    lengths = np.random.default_rng(4).integers(1, 20, size=60)
    sequences = random_sequences(lengths)
    dataset = bucketed_dataset(
        sequences, np.arange(60), batch_size=8, bucket_boundaries=[5, 10]
    )
    for _, ids in collect(dataset)[1]:
        assert len(np.unique(np.digitize(lengths[ids], [5, 10]))) == 1


def test_bucketed_dataset_drop_remainder():
    sequences = random_sequences(np.arange(1, 30))
    dataset = bucketed_dataset(
        sequences, np.arange(29), batch_size=4, drop_remainder=True
    )
    ids, batches = collect(dataset)
    assert all(len(batch_ids) == 4 for _, batch_ids in batches)
    assert len(np.unique(ids)) == len(ids)


def test_bucketed_dataset_shuffle_is_deterministic_per_seed():
    sequences = random_sequences(np.random.default_rng(5).integers(1, 15, 100))

    def epochs(seed, count=2):
        dataset = bucketed_dataset(
            sequences, np.arange(100), batch_size=8, shuffle=True, seed=seed
        )
        return [check_epoch(dataset, sequences) for _ in range(count)]

    first, second = epochs(seed=1)
    np.testing.assert_array_equal(epochs(seed=1), [first, second])
    assert not np.array_equal(first, second)
    assert not np.array_equal(epochs(seed=2, count=1)[0], first)


def test_bucketed_dataset_pads_far_less_than_global_padding():
    (x_train, _), _ = load_japanese_vowels()
    lengths = np.array([len(sequence) for sequence in x_train])
    dataset = bucketed_dataset(x_train, batch_size=32, shuffle=True, seed=0)
    cells = sum(batch.shape[0] * batch.shape[1] for batch in dataset)
    global_padding = len(lengths) * lengths.max() - lengths.sum()
    assert cells - lengths.sum() < 0.2 * global_padding


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labels=np.arange(3)), "one label per sequence (4), got 3"),
        (dict(batch_size=0), "`batch_size`, expected a positive integer"),
        (dict(bucket_boundaries=[5, 5]), "strictly increasing"),
        (dict(bucket_boundaries=[0, 5]), "strictly increasing positive"),
        (dict(bucket_boundaries=[2.5]), "positive integers, got [2.5]"),
    ],
    ids=[
        "labels_length",
        "batch_size",
        "repeated_boundary",
        "zero_boundary",
        "float_boundary",
    ],
)
def test_bucketed_dataset_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        bucketed_dataset(random_sequences([2, 3, 4, 5]), **kwargs)
    assert message in str(info.value)


def test_bucketed_dataset_validates_sequences_like_pad():
    sequences = random_sequences([2, 3])
    sequences[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity in sequence 1"):
        bucketed_dataset(sequences)


def _labelled_sequences(rng, count):
    """Lengths 1 to 29, 2 features; each sequence labelled by its index."""
    lengths = rng.integers(1, 30, size=count)
    sequences = [rng.normal(size=(n, 2)).astype("float32") for n in lengths]
    return lengths, sequences, np.arange(count)


# Three buckets, shuffled: the options both padding tests share.
_BUCKETING = dict(
    batch_size=16, bucket_boundaries=[8, 16], shuffle=True, seed=3
)


def test_pad_to_bucket_boundary_limits_batch_shapes(rng):
    lengths, sequences, labels = _labelled_sequences(rng, 200)
    dataset = bucketed_dataset(
        sequences,
        labels,
        **_BUCKETING,
        pad_to_bucket_boundary=True,
    )
    seen = []
    for epoch in range(3):
        for batch, batch_labels in dataset:
            assert batch.shape[1] in (7, 15, 29)
            for row, label in zip(batch.numpy(), batch_labels.numpy()):
                n = lengths[label]
                np.testing.assert_array_equal(row[:n], sequences[label])
                assert np.isnan(row[n:]).all()
            seen.extend(batch_labels.numpy().tolist())
    assert sorted(seen) == sorted(list(range(200)) * 3)
    assert int(dataset.cardinality()) == len(list(dataset))


def test_pad_to_length_gives_one_shape_and_groups_lengths(rng):
    lengths, sequences, labels = _labelled_sequences(rng, 200)
    dataset = bucketed_dataset(
        sequences,
        labels,
        **_BUCKETING,
        pad_to_length=32,
        pad_value=-1.0,
    )
    assert dataset.element_spec[0].shape.as_list() == [None, 32, 2]
    seen = []
    for batch, batch_labels in dataset:
        assert batch.shape[1] == 32
        batch_lengths = lengths[batch_labels.numpy()]
        assert len(np.unique(np.searchsorted([8, 16], batch_lengths, "right"))) == 1
        for row, label in zip(batch.numpy(), batch_labels.numpy()):
            n = lengths[label]
            np.testing.assert_array_equal(row[:n], sequences[label])
            np.testing.assert_array_equal(row[n:], -1.0)
        seen.extend(batch_labels.numpy().tolist())
    assert sorted(seen) == list(range(200))


def test_pad_to_length_is_checked(rng):
    sequences = [rng.normal(size=(n, 2)) for n in (3, 9)]
    with pytest.raises(ValueError, match="shorter than the longest sequence"):
        bucketed_dataset(sequences, pad_to_length=8)
    with pytest.raises(ValueError, match="not both"):
        bucketed_dataset(
            sequences, pad_to_length=9, pad_to_bucket_boundary=True
        )
    with pytest.raises(ValueError, match="pad_to_length"):
        bucketed_dataset(sequences, pad_to_length=0)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pad_to_bucket_boundary": True, "bucket_boundaries": [8, 16]},
        {"pad_to_length": 31, "pad_value": -1.0},
        {"drop_remainder": True},
    ],
    ids=["own_length", "bucket_boundary", "pad_to_length", "drop_remainder"],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["table", "streamed"])
def test_planned_batches_are_bucket_by_sequence_length_batches(
    rng, options, streamed, monkeypatch
):
    # epochs_dataset plans its batches in NumPy, batch by batch; they must be
    # the very batches tf.data's bucket_by_sequence_length makes, from one
    # padded constant or padded as they are drawn.
    if streamed:
        monkeypatch.setattr(data_lib, "TABLE_BYTES", 0)
    _, sequences, labels = _labelled_sequences(rng, 203)
    batches, steps, planned = data_lib._bucketing(sequences, labels, 16, **options)
    order = rng.permutation(203)
    want = list(batches(tf.data.Dataset.from_tensor_slices(order)))
    got = list(planned(order[None]))
    assert len(got) == len(want) == steps
    for (x, y), (x_want, y_want) in zip(got, want):
        np.testing.assert_array_equal(y, y_want)
        np.testing.assert_array_equal(x, x_want)


def test_streamed_epochs_are_the_table_epochs(rng, monkeypatch):
    """Random crops, several epochs, a resumed start: the same batches
    whether the data is one constant or padded batch by batch."""
    _, sequences, labels = _labelled_sequences(rng, 97)
    kwargs = dict(epochs=3, initial_epoch=1, seed=5, random_crop=0.3,
                  pad_to_length=40)
    table, steps = data_lib.epochs_dataset(sequences, labels, 8, **kwargs)
    monkeypatch.setattr(data_lib, "TABLE_BYTES", 0)
    streamed, same_steps = data_lib.epochs_dataset(sequences, labels, 8, **kwargs)
    assert steps == same_steps
    pairs = list(zip(table, streamed, strict=True))
    assert len(pairs) == 2 * steps
    for (x, y), (x_streamed, y_streamed) in pairs:
        np.testing.assert_array_equal(y, y_streamed)
        np.testing.assert_array_equal(x, x_streamed)
