"""Streaming in Keras: `SequenceClassifier.stream` and `streaming.replay`."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_seqrnn
from keras_seqrnn import data
from keras_seqrnn import streaming

FEATURES = 3
CONFIGS = [
    # (pooling, frame_length, highway)
    ("last", 1, "depth"),
    ("mean", 2, "time"),
    ("last_mean", 3, None),
    ("last_mean", 1, "both"),
]


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(7)
    built = {}
    for pooling, frame_length, highway in CONFIGS:
        built[pooling, frame_length, highway] = keras_seqrnn.build_classifier(
            FEATURES,
            4,
            units=[6, 5],
            highway=highway,
            pooling=pooling,
            frame_length=frame_length,
            feature_mean=rng.normal(size=FEATURES),
            feature_variance=rng.uniform(0.5, 2.0, FEATURES),
            seed=1,
        )
    return built


@settings(max_examples=12, deadline=None)
@given(
    config=st.sampled_from(CONFIGS),
    lengths=st.lists(st.integers(0, 14), min_size=1, max_size=4),
    chunkings=st.lists(st.integers(0, 5), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_streaming_equals_the_whole_model_after_every_chunk(
    models, config, lengths, chunkings, seed
):
    """Streams of uneven chunks, each stream its own sizes (0 included),
    end every chunk where `model(steps so far)` does."""
    model = models[config]
    rng = np.random.default_rng(seed)
    sequences = [
        rng.normal(size=(n, FEATURES)).astype(np.float32) for n in lengths
    ]
    position = [0] * len(sequences)
    state = None
    k = 0
    while True:
        sizes = [chunkings[(k + i) % len(chunkings)] for i in range(len(sequences))]
        if k >= len(chunkings):
            sizes = [max(n, 1) for n in sizes]  # every stream reaches its end
        k += 1
        parts = [s[p : p + n] for s, p, n in zip(sequences, position, sizes)]
        probabilities, state = model.stream(
            data.pad(parts, max(max(len(p) for p in parts), 1))[0], state
        )
        position = [p + len(part) for p, part in zip(position, parts)]
        seen = [s[:p] for s, p in zip(sequences, position)]
        want = model(data.pad(seen, max(max(position), 1))[0]).numpy()
        np.testing.assert_allclose(probabilities.numpy(), want, atol=1e-5)
        if all(p == len(s) for p, s in zip(position, sequences)) and k > 2:
            break


def test_reset_starts_one_stream_over(models, rng):
    model = models["last_mean", 3, None]
    a, b = (rng.normal(size=(2, 8, FEATURES)).astype(np.float32))
    _, state = model.stream(np.stack([a, b]))
    probabilities, _ = model.stream(np.stack([b, b]), state, reset=[True, False])
    want = model(np.stack([b, np.concatenate([b, b])[:8]]))
    np.testing.assert_allclose(probabilities[0], want[0], atol=1e-5)
    want_b = model(np.concatenate([b, b])[None])
    np.testing.assert_allclose(probabilities[1], want_b[0], atol=1e-5)


def test_a_stream_of_10000_steps_stays_bounded_and_exact(models, rng):
    model = models["last_mean", 3, None]  # tanh outputs, in [-1, 1]
    sequence = rng.normal(size=(10_000, FEATURES)).astype(np.float32)
    state = None
    for chunk in np.split(sequence, 16):  # 625 steps: frames cross chunks
        probabilities, state = model.stream(chunk[None], state)
    assert int(state["frames"][0]) == 3333
    assert int(state["pending_length"][0]) == 1
    assert np.abs(state["mean"].numpy()).max() <= 1.0
    want = model(sequence[None]).numpy()
    np.testing.assert_allclose(probabilities.numpy(), want, atol=1e-5)


def test_bidirectional_models_cannot_stream():
    model = keras_seqrnn.build_classifier(FEATURES, 3, units=4, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional.*--no-bidirectional"):
        model.stream(np.zeros((1, 2, FEATURES), np.float32))


def test_quantization_aware_models_refuse_to_stream(models):
    from export import quantize_aware

    qat = quantize_aware(models["last", 1, "depth"])
    with pytest.raises(TypeError, match="quantization-aware"):
        qat.stream(np.zeros((1, 2, FEATURES), np.float32))


def test_a_state_of_another_model_or_batch_is_refused(models):
    model = models["last", 1, "depth"]
    other = models["mean", 2, "time"]
    chunk = np.zeros((2, 3, FEATURES), np.float32)
    _, state = other.stream(chunk)
    with pytest.raises(ValueError, match="Expected the stream state"):
        model.stream(chunk, state)
    _, state = model.stream(chunk)
    with pytest.raises(ValueError, match="a state from another model or batch"):
        model.stream(chunk[:1], state)
    with pytest.raises(ValueError, match="features"):
        model.stream(np.zeros((2, 3, FEATURES + 1), np.float32), state)


def test_replay_gives_every_prefix_and_settles(models, rng):
    model = models["last_mean", 3, None]
    sequences = [rng.normal(size=(n, FEATURES)).astype(np.float32) for n in (5, 9)]
    history = streaming.replay(model, sequences, chunk_length=2)
    assert [len(h) for h in history] == [3, 5]
    for sequence, steps in zip(sequences, history):
        for k, row in enumerate(steps):
            want = model(sequence[None, : 2 * (k + 1)]).numpy()[0]
            np.testing.assert_allclose(row, want, atol=1e-5)
    assert streaming.settled(np.eye(3)[[0, 1, 1, 2, 2]]) == 3
    assert streaming.settled(np.eye(3)[[2, 2]]) == 0
    with pytest.raises(ValueError, match="Sequence 1 is empty"):
        streaming.replay(model, [sequences[0], sequences[0][:0]])
