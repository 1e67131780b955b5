"""`StreamSession`: streams pushed through an exported `stream` signature."""

import numpy as np


class StreamSession:
    """Several streams classified as their samples arrive, on LiteRT.

    Made by `LiteRTModel.stream(num_streams)`. Each push feeds a stream's
    new samples, any number at a time, through the file's `stream`
    signature in chunks of its `chunk_length`, carries the state to the
    next call, and returns the probabilities of everything the stream has
    received since it started or was reset: the whole-sequence model's on
    the concatenated samples. A model that reads `frame_length` steps as
    one advances its state by whole frames; the steps of a partial frame
    are kept here and fed again with the next samples.

    Args:
        model: a `LiteRTModel` of a file with a `stream` signature.
        num_streams: Positive integer, the number of streams.

    Example:

    ```python
    session = export.LiteRTModel("gesture.tflite").stream()
    for samples in sensor:  # (n, features) arrays as they arrive
        probabilities = session.push(samples, stream=0)
    session.reset(0)
    ```
    """

    def __init__(self, model, num_streams: int = 1):
        if (
            isinstance(num_streams, bool)
            or not isinstance(num_streams, (int, np.integer))
            or num_streams < 1
        ):
            raise ValueError(
                f"Expected num_streams to be a positive integer, got "
                f"{num_streams!r}."
            )
        self.model = model
        self.num_streams = int(num_streams)
        self._state = model.initial_state(self.num_streams)
        self._pending = [self._empty()] * self.num_streams
        self._probabilities = None

    @property
    def probabilities(self) -> np.ndarray:
        """The latest probabilities of every stream, `(num_streams,
        num_classes)`."""
        if self._probabilities is None:
            self.push([self._empty()] * self.num_streams)
        return self._probabilities.copy()

    def push(self, samples, stream: int | None = None) -> np.ndarray:
        """Feeds new samples; returns the probabilities after them.

        Args:
            samples: with `stream`, that stream's new samples, `(n,
                num_features)`; without, every stream's: a list of
                `num_streams` such arrays (of any lengths, 0 included) or a
                `(num_streams, n, num_features)` array.
            stream: None, or the index of the one stream to feed.

        Returns:
            `(num_classes,)` for one stream, else `(num_streams,
            num_classes)`.

        Raises:
            ValueError: a stream index out of range, samples of another
                shape, or a NaN or infinite sample (named by stream and
                sample). Nothing changes then: no stream's state moves.
        """
        if stream is not None:
            rows = [self._check_stream(stream)]
            samples = [samples]
            if self._probabilities is None:
                self.push([self._empty()] * self.num_streams)
        else:
            rows = list(range(self.num_streams))
            if len(samples) != self.num_streams:
                raise ValueError(
                    f"Expected samples for {self.num_streams} streams, got "
                    f"{len(samples)}; pass `stream=` to feed one."
                )
        new = [self._check_samples(s, row) for s, row in zip(samples, rows)]
        queues = [np.concatenate([self._pending[r], n]) for r, n in zip(rows, new)]
        state = {name: value.copy() for name, value in self._state.items()}
        pending = list(self._pending)
        probabilities = np.zeros(
            (self.num_streams, self.model.num_classes), np.float32
        )
        if self._probabilities is not None:
            probabilities = self._probabilities.copy()
        group = self.model.stream_batch_size or len(rows)
        for start in range(0, len(rows), group):
            members = list(zip(rows, queues))[start : start + group]
            self._run(members, group, state, pending, probabilities)
        self._state, self._pending = state, pending
        self._probabilities = probabilities
        if stream is not None:
            return probabilities[rows[0]].copy()
        return probabilities.copy()

    def reset(self, stream: int | None = None) -> None:
        """Starts a stream (or, with None, every stream) over."""
        rows = range(self.num_streams) if stream is None else [
            self._check_stream(stream)
        ]
        for row in rows:
            for value in self._state.values():
                value[row] = 0
            self._pending[row] = self._empty()
        self._probabilities = None

    def _run(self, members, group, state, pending, probabilities):
        """Feeds each member's queue in chunks, the rows side by side."""
        model = self.model
        frame = model.frame_length
        longest = max(len(queue) for _, queue in members)
        steps = model.chunk_length or max(longest, 1)
        rows = [row for row, _ in members]
        padded_rows = rows + [rows[0]] * (group - len(rows))
        position = [0] * len(members)
        done = [False] * len(members)
        first = True
        while first or not all(done):
            chunk = np.zeros((group, steps, model.num_features), np.float32)
            count = np.zeros(group, np.int32)
            for i, (_, queue) in enumerate(members):
                if not done[i]:
                    part = queue[position[i] : position[i] + steps]
                    chunk[i, : len(part)] = part
                    count[i] = len(part)
            before = {name: value[padded_rows] for name, value in state.items()}
            output, after = model.stream_step(chunk, count, before)
            for i, (row, queue) in enumerate(members):
                if done[i]:
                    continue
                probabilities[row] = output[i]
                for name in state:
                    state[name][row] = after[name][i]
                position[i] += count[i] // frame * frame
                # A file that takes any chunk length took all of it.
                if (
                    count[i] < steps
                    or position[i] == len(queue)
                    or model.chunk_length is None
                ):
                    done[i] = True
                    pending[row] = queue[position[i] :]
            first = False

    def _check_stream(self, stream):
        if (
            isinstance(stream, bool)
            or not isinstance(stream, (int, np.integer))
            or not 0 <= stream < self.num_streams
        ):
            raise ValueError(
                f"Stream {stream!r} is out of range: this session has "
                f"streams 0 to {self.num_streams - 1}."
            )
        return int(stream)

    def _check_samples(self, samples, stream):
        samples = np.asarray(samples, np.float32)
        features = self.model.num_features
        if samples.ndim != 2 or samples.shape[1] != features:
            raise ValueError(
                f"Samples of stream {stream} have shape {samples.shape}; "
                f"expected (n, {features})."
            )
        bad = np.argwhere(~np.isfinite(samples).all(axis=1))
        if len(bad):
            raise ValueError(
                f"Sample {int(bad[0][0])} of the samples pushed to stream "
                f"{stream} holds NaN or infinity; nothing was pushed."
            )
        return samples

    def _empty(self):
        return np.zeros((0, self.model.num_features), np.float32)
