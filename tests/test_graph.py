import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_seqrnn
from export import frozen_model
from export import graph
from export import litert_model


@pytest.fixture(
    scope="module",
    params=[
        {},
        {"bidirectional": True, "pooling": "last_mean"},
        {"bidirectional": True, "pooling": "mean", "highway": None},
        {"bidirectional": True, "pooling": "last_mean", "frame_length": 3},
    ],
    ids=["forward-last", "both-last_mean", "both-mean-plain", "frames"],
)
def model(request):
    rng = np.random.default_rng(7)
    model = keras_seqrnn.build_classifier(
        4, 3, units=[6, 5], **{"highway": "both", **request.param},
        feature_mean=rng.normal(size=4),
        feature_variance=rng.uniform(0.5, 2.0, 4),
    )
    model.build((None, None, 4))
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape) * 0.5)
    return model


def _keras(model, padded, lengths):
    steps = np.arange(padded.shape[1])[None, :, None]
    return np.asarray(
        model(np.where(steps < lengths[:, None, None], padded, np.nan))
    )


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 9), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_loop_and_unrolled_graphs_equal_keras(model, lengths, seed):
    """With zero steps inside the sequences: they are data to both."""
    rng = np.random.default_rng(seed)
    sequences = [rng.normal(size=(n, 4)).astype(np.float32) for n in lengths]
    for sequence in sequences:
        sequence[rng.random(len(sequence)) < 0.3] = 0.0
    padded, lengths = litert_model.prepare_sequences(sequences, None, 4)
    padded = np.pad(padded, [(0, 0), (0, 9 - padded.shape[1]), (0, 0)])
    expected = _keras(model, padded, lengths)
    frozen = frozen_model.freeze(model)
    loop = graph.classifier_function(frozen, unroll=False)
    unrolled = graph.classifier_function(
        frozen, unroll=True, batch_size=len(lengths), max_length=9
    )
    for function in (loop, unrolled):
        got = function(sequences=tf.constant(padded), lengths=tf.constant(lengths))
        np.testing.assert_allclose(got[graph.PROBABILITIES], expected, atol=1e-6)


def test_converted_loop_runs_any_batch_and_length_in_litert(model, rng):
    frozen = frozen_model.freeze(model)
    content = graph.convert({"serving_default": graph.classifier_function(frozen, unroll=False)}, None)
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner(graph.SIGNATURE)
    for batch, steps in [(1, 1), (3, 17), (8, 5)]:
        padded = rng.normal(size=(batch, steps, 4)).astype(np.float32)
        lengths = rng.integers(0, steps + 1, batch).astype(np.int32)
        got = runner(sequences=padded, lengths=lengths)[graph.PROBABILITIES]
        np.testing.assert_allclose(got, _keras(model, padded, lengths), atol=1e-5)
