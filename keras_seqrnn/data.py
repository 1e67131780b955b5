"""Padding, masking and bucketed batching of variable-length sequences."""

import math
import numbers

import numpy as np
import tensorflow as tf

from keras_seqrnn.validation import check_non_negative_int
from keras_seqrnn.validation import check_positive_int
from keras_seqrnn.validation import check_rate


# Above this size the padded training data is not held as one constant:
# batches are padded as they are drawn (`epochs_dataset`).
TABLE_BYTES = 256 * 2**20


def pad(
    sequences: list[np.ndarray] | np.ndarray,
    max_length: int | None = None,
    value: float = math.nan,
    dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Pads variable-length sequences at the end to a common length.

    Sequences are never truncated.

    Args:
        sequences: List of arrays of shape `(length, features)` (`length` may
            be 0), or an already padded array of shape
            `(batch, length, features)`. Values must be finite.
        max_length: Length to pad to. Defaults to the longest sequence.
        value: Padding value. Default: NaN, which no data step holds, so
            `SequenceClassifier` (`mask_value=nan`) reads each sequence's
            length from where its padding starts.
        dtype: Dtype of the padded array.

    Returns:
        Tuple `(padded, lengths)`: `padded` of shape
        `(batch, max_length, features)` and the int32 `lengths` of shape
        `(batch,)`.

    Raises:
        ValueError: If `sequences` is empty, a sequence is not 2-D, has a
            different number of features than the first one or has a
            non-finite value, or if a sequence is longer than `max_length`.

    Example:

    >>> padded, lengths = pad([np.ones((2, 3)), np.ones((1, 3))])
    >>> padded.shape, lengths
    ((2, 2, 3), array([2, 1], dtype=int32))
    """
    sequences = check_sequences(sequences)
    lengths = np.array([len(sequence) for sequence in sequences], dtype="int32")
    if max_length is None:
        max_length = int(lengths.max())
    else:
        check_non_negative_int("max_length", max_length)
        too_long = np.flatnonzero(lengths > max_length)
        if too_long.size:
            index = too_long[0]
            raise ValueError(
                f"Received an invalid value for argument `max_length`: "
                f"sequence {index} has length {lengths[index]}, longer than "
                f"`max_length={max_length}`. Sequences are never truncated; "
                "pass a larger `max_length` or `None`."
            )
    padded = np.full(
        (len(sequences), max_length, sequences[0].shape[1]), value, dtype=dtype
    )
    for row, sequence in zip(padded, sequences):
        row[: len(sequence)] = sequence
    return padded, lengths


def feature_statistics(
    sequences: list[np.ndarray] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and variance over every real step of `sequences`.

    Padding never counts: each sequence contributes its own steps. Pass the
    result as `feature_mean` and `feature_variance` to
    `keras_seqrnn.build_classifier` so the model standardizes its inputs
    with the statistics of the training split only.

    Args:
        sequences: List of arrays of shape `(length, features)` (as for
            `pad`); at least one step in all.

    Returns:
        `(mean, variance)`, float64 arrays of shape `(features,)`; a
        variance of 0 (a constant feature) is returned as 1.

    Example:

    >>> mean, variance = feature_statistics([np.ones((2, 3)), np.zeros((1, 3))])
    >>> mean.round(3).tolist(), variance.round(3).tolist()
    ([0.667, 0.667, 0.667], [0.222, 0.222, 0.222])
    """
    sequences = check_sequences(sequences)
    count = sum(len(sequence) for sequence in sequences)
    if not count:
        raise ValueError(
            "Received an invalid value for argument `sequences`, expected at "
            "least one time step in all, got only empty sequences."
        )
    # Two passes, sequence by sequence: no copy of the whole data set.
    mean = sum(s.sum(axis=0, dtype="float64") for s in sequences) / count
    variance = sum(np.square(s - mean).sum(axis=0) for s in sequences) / count
    return mean, np.where(variance > 0, variance, 1.0)


def mask_from_lengths(lengths: np.ndarray, max_length: int) -> np.ndarray:
    """Builds a boolean mask that is `True` on the valid steps.

    Args:
        lengths: 1-D integer array of sequence lengths, each in
            `[0, max_length]`.
        max_length: Number of time steps of the mask.

    Returns:
        Boolean array of shape `(len(lengths), max_length)` whose row `i` is
        `True` on its first `lengths[i]` steps.

    Raises:
        ValueError: If `lengths` is not a 1-D integer array, a length is
            negative or greater than `max_length`, or `max_length` is
            negative.

    Example:

    >>> mask_from_lengths([2, 0], max_length=3)
    array([[ True,  True, False],
           [False, False, False]])
    """
    check_non_negative_int("max_length", max_length)
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(
            "Received an invalid value for argument `lengths`, expected a "
            f"1-D array of integers, got shape {lengths.shape} and dtype "
            f"{lengths.dtype}."
        )
    invalid = np.flatnonzero((lengths < 0) | (lengths > max_length))
    if invalid.size:
        index = invalid[0]
        raise ValueError(
            "Received an invalid value for argument `lengths`, expected "
            f"values in [0, max_length={max_length}], got {lengths[index]} "
            f"at index {index}."
        )
    return np.arange(max_length) < lengths[:, None]


def stratified_split(
    sequences: list[np.ndarray],
    labels: np.ndarray,
    fraction: float,
    seed: int = 0,
) -> tuple[tuple[list, np.ndarray], tuple[list, np.ndarray]]:
    """Holds out `fraction` of each class's sequences, seeded.

    Each class keeps at least one sequence on the kept side; a class gives
    `round(fraction * count)` of its sequences to the held-out side.

    Args:
        sequences: the sequences.
        labels: one integer label per sequence.
        fraction: float in `(0, 1)`.
        seed: integer seed of the choice. Default: `0`.

    Returns:
        `((kept_sequences, kept_labels), (held_sequences, held_labels))`,
        each side in the original order.

    Raises:
        ValueError: `fraction` out of range, or a split that leaves no
            sequence on one side.

    Example:

    >>> (x_fit, y_fit), (x_val, y_val) = stratified_split(x, y, 0.2)  # doctest: +SKIP
    """
    if not (isinstance(fraction, numbers.Real) and 0 < fraction < 1):
        raise ValueError(
            "Received an invalid value for argument `fraction`, expected a "
            f"float in (0, 1), got {fraction!r}."
        )
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(int(round(fraction * len(members))), len(members) - 1)
        held[members[:count]] = True
    if not held.any():
        raise ValueError(
            f"A split of {fraction} holds out no sequence of "
            f"{len(labels)}: too few sequences per class."
        )
    keep, hold = np.flatnonzero(~held), np.flatnonzero(held)
    return (
        ([sequences[i] for i in keep], labels[keep]),
        ([sequences[i] for i in hold], labels[hold]),
    )


def bucketed_dataset(
    sequences: list[np.ndarray] | np.ndarray,
    labels: np.ndarray | None = None,
    batch_size: int = 32,
    bucket_boundaries: list[int] | None = None,
    shuffle: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    pad_value: float = math.nan,
    pad_to_bucket_boundary: bool = False,
    pad_to_length: int | None = None,
) -> tf.data.Dataset:
    """Batches variable-length sequences of similar lengths together.

    Sequences are grouped into buckets by length and each batch is padded
    at the end only to its own longest sequence, which wastes far less
    computation than padding everything to the global maximum. Every
    sequence appears exactly once per epoch (unless `drop_remainder=True`).

    Args:
        sequences: List of arrays of shape `(length, features)`, or an
            already padded array of shape `(batch, length, features)`.
            Values must be finite.
        labels: Optional array with one label (or label array) per sequence.
        batch_size: Maximum number of sequences per batch.
        bucket_boundaries: Increasing positive lengths separating the
            buckets; bucket `i` holds the lengths in
            `[bucket_boundaries[i - 1], bucket_boundaries[i])`. Defaults to
            quantiles of the lengths, about one bucket per `batch_size`
            sequences and at most 8 (each bucket ends in a smaller batch).
        shuffle: Whether to shuffle the sequences before bucketing, anew
            each epoch.
        seed: Shuffling seed; the same seed gives the same order.
        drop_remainder: Whether to drop each bucket's last, smaller batch.
        pad_value: Padding value. Default: NaN, as for `pad`.
        pad_to_bucket_boundary: Whether to pad every batch of a bucket to
            the bucket's largest length rather than to its own longest
            sequence. XLA compiles the training step once per batch shape,
            so this trades a little padding for far fewer compilations.
        pad_to_length: None, or pad every batch to this many steps (at
            least the longest sequence): one batch shape, so XLA compiles
            the step once and `steps_per_execution` may span an epoch.
            Grouping by length still pays: the recurrent layers stop after
            each batch's last real step.

    Returns:
        A `tf.data.Dataset` of float32 batches of shape
        `(batch, batch_length, features)`, paired with their labels as
        `(batch, labels)` when `labels` is given.

    Raises:
        ValueError: If the sequences are invalid (as for `pad`), the number
            of labels differs from the number of sequences, or an argument
            is out of range.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> sequences = [rng.normal(size=(n, 3)) for n in (5, 9, 4, 8)]
    >>> dataset = bucketed_dataset(sequences, batch_size=2)
    >>> [batch.shape[1] for batch in dataset]
    [5, 8, 9]
    """
    batches, num_batches, _ = _bucketing(
        sequences,
        labels,
        batch_size,
        bucket_boundaries,
        drop_remainder,
        pad_value,
        pad_to_bucket_boundary,
        pad_to_length,
    )
    order = tf.data.Dataset.range(len(sequences))
    if shuffle:
        order = order.shuffle(len(sequences), seed=seed)
    return _with_cardinality(batches(order), num_batches)


def count_batches(
    sequences: list[np.ndarray] | np.ndarray, batch_size: int, **bucketing
) -> int:
    """The batches of one pass of `bucketed_dataset` (and of each epoch of
    `epochs_dataset`) over `sequences`, counted without building them.

    Args:
        sequences: as for `bucketed_dataset`.
        batch_size: positive integer, sequences per batch.
        **bucketing: other arguments of `bucketed_dataset`
            (`bucket_boundaries`, `drop_remainder`, ...).
    """
    return _bucketing(sequences, None, batch_size, **bucketing)[1]


def epochs_dataset(
    sequences: list[np.ndarray] | np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    epochs: int,
    initial_epoch: int = 0,
    seed: int = 0,
    random_crop: float = 0.0,
    **bucketing,
) -> tuple[tf.data.Dataset, int]:
    """The bucketed, shuffled batches of several epochs, as one dataset.

    The order of epoch `e` (and its crops) depends only on `seed` and `e`,
    so a run resumed at epoch `e` sees the very batches an uninterrupted run
    sees. Pass the dataset to `fit` with `steps_per_epoch`, `epochs` and
    `initial_epoch`. Data sets whose padded copy would exceed `TABLE_BYTES`
    (256 MiB) are padded batch by batch as training draws them, from the
    arrays given: memory holds them once, whatever their number.

    With `random_crop` c > 0, every epoch shows each sequence of length L
    as a window of `round(u L)` consecutive steps (at least one), `u` drawn
    uniformly from `[1 - c, 1]`, at a uniformly drawn position (window
    slicing, Le Guennec et al. 2016): augmentation that teaches a model of
    few training series to recognize a pattern wherever, and however
    completely, it occurs.

    Args:
        sequences: as for `bucketed_dataset`.
        labels: one label per sequence.
        batch_size: positive integer, sequences per batch.
        epochs: the epoch to stop before.
        initial_epoch: the first epoch. Default: `0`.
        seed: integer seed of the shuffling. Default: `0`.
        random_crop: float in `[0, 1)`, the largest fraction of a sequence
            a crop removes; 0 shows every sequence whole. Default: `0.0`.
        **bucketing: other arguments of `bucketed_dataset`
            (`bucket_boundaries`, `drop_remainder`, `pad_value`,
            `pad_to_bucket_boundary`, `pad_to_length`).

    Returns:
        `(dataset, steps_per_epoch)`.

    Example:

    >>> dataset, steps = epochs_dataset(x, y, 32, epochs=10)  # doctest: +SKIP
    >>> model.fit(dataset, epochs=10, steps_per_epoch=steps)  # doctest: +SKIP
    """
    check_non_negative_int("initial_epoch", initial_epoch)
    check_positive_int("epochs", epochs)
    check_rate("random_crop", random_crop)
    if initial_epoch >= epochs:
        raise ValueError(
            f"Received `initial_epoch={initial_epoch}` and `epochs={epochs}`: "
            "there is no epoch left to run."
        )
    _, steps, planned = _bucketing(sequences, labels, batch_size, **bucketing)
    lengths = np.array([len(sequence) for sequence in sequences])
    orders, crops = [], []
    for epoch in range(initial_epoch, epochs):
        rng = np.random.default_rng([seed & 0xFFFFFFFF, epoch])
        orders.append(rng.permutation(len(sequences)))
        if random_crop:
            kept = rng.uniform(1 - random_crop, 1, len(lengths)) * lengths
            kept = np.clip(np.round(kept), 1, np.maximum(lengths, 1))
            start = np.floor(rng.uniform(size=len(lengths)) * (lengths - kept + 1))
            crops.append(np.stack([start, kept], axis=-1).astype(np.int32))
    dataset = planned(np.stack(orders), np.stack(crops) if crops else None)
    return _with_cardinality(dataset, steps * (epochs - initial_epoch)), steps


def _bucketing(
    sequences,
    labels,
    batch_size,
    bucket_boundaries=None,
    drop_remainder=False,
    pad_value=math.nan,
    pad_to_bucket_boundary=False,
    pad_to_length=None,
):
    """Validates; returns `(batches, num_batches, planned)`.

    `batches(order)` maps a dataset of sequence indices to the padded
    batches of one pass over them; `planned(orders)` makes the same batches
    of passes in orders known in advance (a `(passes, num_sequences)`
    array), batch by batch rather than sequence by sequence, which is
    several times faster: gathered from one padded constant when it takes
    at most `TABLE_BYTES`, else padded in NumPy as each batch is drawn
    (about a fifth slower on small batches, but holding no copy of the
    data and putting none in a graph).
    """
    sequences = check_sequences(sequences)
    check_positive_int("batch_size", batch_size)
    lengths = np.array([len(sequence) for sequence in sequences])
    if labels is not None and len(labels) != len(sequences):
        raise ValueError(
            "Received an invalid value for argument `labels`, expected one "
            f"label per sequence ({len(sequences)}), got {len(labels)}."
        )
    if bucket_boundaries is None:
        bucket_boundaries = _default_bucket_boundaries(lengths, batch_size)
    elif not all(
        isinstance(boundary, numbers.Integral) and boundary > 0
        for boundary in bucket_boundaries
    ) or np.any(np.diff(bucket_boundaries) <= 0):
        raise ValueError(
            "Received an invalid value for argument `bucket_boundaries`, "
            "expected strictly increasing positive integers, got "
            f"{bucket_boundaries!r}."
        )
    bucket_boundaries = [int(boundary) for boundary in bucket_boundaries]
    if pad_to_length is not None:
        if pad_to_bucket_boundary:
            raise ValueError(
                "Pass `pad_to_length` or `pad_to_bucket_boundary=True`, not "
                "both."
            )
        check_positive_int("pad_to_length", pad_to_length)
        if pad_to_length < lengths.max():
            raise ValueError(
                f"Received `pad_to_length={pad_to_length}`, shorter than the "
                f"longest sequence ({lengths.max()} steps)."
            )
    if pad_to_bucket_boundary and (
        not bucket_boundaries or bucket_boundaries[-1] <= lengths.max()
    ):
        # The last bucket needs an upper bound to pad to.
        bucket_boundaries.append(int(lengths.max()) + 1)
    def padded(batch, *rest):
        steps = pad_to_length - tf.shape(batch)[1]
        batch = tf.pad(
            batch, [[0, 0], [0, steps], [0, 0]], constant_values=pad_value
        )
        batch = tf.ensure_shape(batch, [None, pad_to_length, batch.shape[-1]])
        return (batch, *rest) if rest else batch

    def batches(order):
        values = tf.constant(np.concatenate(sequences), dtype="float32")
        ends = np.cumsum(lengths)
        starts, ends = tf.constant(ends - lengths), tf.constant(ends)
        targets = None if labels is None else tf.constant(np.asarray(labels))

        def element(index):
            sequence = values[starts[index] : ends[index]]
            return sequence if targets is None else (sequence, targets[index])

        batched = order.map(element).bucket_by_sequence_length(
            element_length_func=lambda sequence, *_: tf.shape(sequence)[0],
            bucket_boundaries=bucket_boundaries,
            bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
            padding_values=(
                tf.constant(pad_value, "float32")
                if labels is None
                else (tf.constant(pad_value, "float32"), None)
            ),
            drop_remainder=drop_remainder,
            pad_to_bucket_boundary=pad_to_bucket_boundary,
        )
        return batched if pad_to_length is None else batched.map(padded)

    # Each bucket's size is fixed whatever the order, so the batch count is
    # known; Keras warns that unknown-cardinality input "ran out of data".
    buckets = np.searchsorted(bucket_boundaries, lengths, side="right")
    bucket_sizes = np.bincount(buckets, minlength=len(bucket_boundaries) + 1)
    if drop_remainder:
        num_batches = bucket_sizes // batch_size
    else:
        num_batches = -(-bucket_sizes // batch_size)

    def planned(orders, crops=None):
        plans = [
            _plan(order, buckets, batch_size, drop_remainder) for order in orders
        ]
        members = [(p, batch) for p, plan in enumerate(plans) for batch in plan]
        if pad_to_length is not None:
            widths = np.full(len(members), pad_to_length, np.int32)
        elif pad_to_bucket_boundary:
            widths = np.array(
                [bucket_boundaries[buckets[b[0]]] - 1 for _, b in members], np.int32
            )
        else:
            widths = np.array([lengths[b].max() for _, b in members], np.int32)
        features = sequences[0].shape[-1]
        width = int(widths.max()) if len(widths) else int(lengths.max())
        if len(sequences) * width * features * 4 <= TABLE_BYTES:
            return _from_table(members, widths, width, crops)
        return _streamed(members, widths, features, crops)

    def _from_table(members, widths, width, crops):
        # The whole padded data set as one constant: the fastest input.
        sizes = np.array([len(batch) for _, batch in members], np.int32)
        indices = np.zeros((len(members), batch_size), np.int32)
        windows = np.zeros((len(members), batch_size, 2), np.int32)
        for row, window, (p, batch) in zip(indices, windows, members):
            row[: len(batch)] = batch
            if crops is not None:
                window[: len(batch)] = crops[p, batch]
        table, _ = pad(sequences, max_length=width, value=pad_value)
        table = tf.constant(table)
        targets = None if labels is None else tf.constant(np.asarray(labels))

        def batch(row, size, width, window):
            chosen = row[:size]
            x = tf.gather(table, chosen)[:, :width]
            if crops is not None:
                start, length = window[:size, 0], window[:size, 1]
                steps = tf.range(width)[None, :]
                x = tf.gather(
                    x, tf.minimum(start[:, None] + steps, width - 1), batch_dims=1
                )
                x = tf.where(
                    (steps < length[:, None])[:, :, None],
                    x,
                    tf.constant(pad_value, x.dtype),
                )
            if pad_to_length is not None:
                x = tf.ensure_shape(x, [None, pad_to_length, table.shape[-1]])
            return x if targets is None else (x, tf.gather(targets, chosen))

        return tf.data.Dataset.from_tensor_slices(
            (indices, sizes, widths, windows)
        ).map(batch)

    def _streamed(members, widths, features, crops):
        # Each batch padded when it is drawn, from the caller's arrays: the
        # data is held once, whatever its size, and no constant of it
        # enters a graph.
        targets = None if labels is None else np.asarray(labels)

        def generate():
            for (p, batch), width in zip(members, widths):
                x = np.full((len(batch), width, features), pad_value, np.float32)
                for row, index in zip(x, batch):
                    sequence = sequences[index]
                    if crops is not None:
                        start, kept = crops[p, index]
                        sequence = sequence[start : start + kept]
                    row[: len(sequence)] = sequence
                yield x if targets is None else (x, targets[batch])

        spec = tf.TensorSpec((None, pad_to_length, features), tf.float32)
        if targets is not None:
            spec = (
                spec,
                tf.TensorSpec((None, *targets.shape[1:]), tf.as_dtype(targets.dtype)),
            )
        return tf.data.Dataset.from_generator(generate, output_signature=spec)

    return batches, int(num_batches.sum()), planned


def _plan(order, buckets, batch_size, drop_remainder):
    """The batches `bucket_by_sequence_length` makes of `order`: every
    bucket's full batches in the order they fill, then what is left in each
    bucket."""
    full, rest = [], []
    bucket_of = buckets[order]
    for bucket in np.unique(bucket_of):
        members = order[bucket_of == bucket]
        positions = np.flatnonzero(bucket_of == bucket)
        count = len(members) // batch_size * batch_size
        for start in range(0, count, batch_size):
            completed = positions[start + batch_size - 1]
            full.append((completed, members[start : start + batch_size]))
        if count < len(members) and not drop_remainder:
            rest.append(members[count:])
    return [batch for _, batch in sorted(full, key=lambda item: item[0])] + rest


def _with_cardinality(dataset, num_batches):
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _default_bucket_boundaries(lengths, batch_size, most=8):
    num_buckets = min(max(len(lengths) // batch_size, 1), most)
    quantiles = np.quantile(
        lengths, np.linspace(0, 1, num_buckets + 1)[1:-1], method="higher"
    )
    # Boundaries are exclusive upper bounds: `q + 1` keeps length `q` below.
    return np.unique(quantiles) + 1


def check_sequences(sequences) -> list[np.ndarray]:
    """The sequences as arrays, checked.

    Raises:
        ValueError: no sequence, a sequence that is not 2-D, a feature
            count unlike the first sequence's, or a value that is not
            finite; the message names the sequence.
    """
    if isinstance(sequences, np.ndarray) and sequences.ndim != 3:
        raise ValueError(
            "Received an invalid value for argument `sequences`, expected a "
            "list of 2-D arrays or a 3-D array, got an array of shape "
            f"{sequences.shape}."
        )
    if len(sequences) == 0:
        raise ValueError(
            "Received an invalid value for argument `sequences`, expected at "
            "least one sequence, got none."
        )
    sequences = [np.asarray(sequence) for sequence in sequences]
    features = sequences[0].shape[-1:]
    for index, sequence in enumerate(sequences):
        if sequence.ndim != 2:
            raise ValueError(
                "Received an invalid value for argument `sequences`, expected "
                "arrays of shape (length, features), got shape "
                f"{sequence.shape} for sequence {index}."
            )
        if sequence.shape[1:] != features:
            raise ValueError(
                "Received an invalid value for argument `sequences`, expected "
                f"{features[0]} features (as in sequence 0), got "
                f"{sequence.shape[1]} for sequence {index}."
            )
        if not np.isfinite(sequence).all():
            raise ValueError(
                "Received an invalid value for argument `sequences`, expected "
                f"finite values, got NaN or infinity in sequence {index}."
            )
    return sequences
