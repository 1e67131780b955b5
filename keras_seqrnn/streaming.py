"""Replaying sequences as streams: how early does a classifier know?"""

import numpy as np

from keras_seqrnn import data


def replay(model, sequences, chunk_length: int = 1) -> list[np.ndarray]:
    """Streams each sequence, `chunk_length` steps at a time.

    All sequences stream side by side, one stream each, from a zero state.

    Args:
        model: a forward-only `keras_seqrnn.SequenceClassifier`
            (`SequenceClassifier.stream`), or an `export.LiteRTModel` of a
            file with a stream signature (`LiteRTModel.stream`).
        sequences: a list of `(time, features)` arrays.
        chunk_length: Positive integer, the steps pushed at a time.

    Returns:
        One `(chunks, num_classes)` array per sequence: the probabilities
        after each of its chunks (the last row is the whole sequence's).

    Raises:
        ValueError: the model cannot stream (bidirectional, or a file
            without a stream signature), or a sequence is empty.
    """
    if isinstance(chunk_length, bool) or not isinstance(chunk_length, int) or (
        chunk_length < 1
    ):
        raise ValueError(
            f"Expected chunk_length to be a positive integer, got "
            f"{chunk_length!r}."
        )
    sequences = [np.asarray(s, np.float32) for s in sequences]
    for i, sequence in enumerate(sequences):
        if len(sequence) == 0:
            raise ValueError(f"Sequence {i} is empty: nothing to stream.")
    lengths = np.array([len(s) for s in sequences])
    chunks = -(-lengths // chunk_length)
    steps = int(chunks.max(initial=0))
    history = [[] for _ in sequences]
    if hasattr(model, "stream_step"):
        session = model.stream(len(sequences))
        push = lambda part: session.push(part)  # noqa: E731
    else:
        state = None

        def push(part):
            nonlocal state
            padded, _ = data.pad(part, max(len(p) for p in part))
            probabilities, state = model.stream(padded, state)
            return np.asarray(probabilities)

    features = sequences[0].shape[1] if sequences else 0
    for k in range(steps):
        part = [
            s[k * chunk_length : (k + 1) * chunk_length] for s in sequences
        ]
        part = [p if len(p) else np.zeros((0, features), np.float32) for p in part]
        probabilities = push(part)
        for i, n in enumerate(chunks):
            if k < n:
                history[i].append(probabilities[i])
    return [np.stack(h) for h in history]


def settled(probabilities: np.ndarray) -> int:
    """The chunk from which the top-1 class stays the final one.

    Args:
        probabilities: `(chunks, num_classes)`, one row of `replay`.

    Returns:
        The 0-based index of the first chunk after which every prediction
        equals the last.
    """
    top = np.asarray(probabilities).argmax(axis=-1)
    changed = np.flatnonzero(top != top[-1])
    return int(changed[-1] + 1) if len(changed) else 0
