"""The `stream` signature: export, verification and `StreamSession`."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import export
from export import ExportConfig
from export import LiteRTModel
from export.tflite_export import MIN_INT8_AGREEMENT
from keras_seqrnn import data
from tests import export_fixtures

CHUNK = 4


@pytest.fixture(scope="module")
def trained():
    return export_fixtures.trained_classifier(
        highway="time", bidirectional=False, pooling="last", frame_length=2
    )


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    model, (x_train, _), (x_test, y_test) = trained
    folder = tmp_path_factory.mktemp("stream")
    verification = (x_test[:60], y_test[:60])
    reports = {}
    for name, kwargs in [
        ("cpu", {"target": "cpu"}),
        ("gpu", {"target": "gpu"}),
        ("gpu-whole", {"target": "gpu", "max_length": 29}),
        ("mobile-int8", {"target": "mobile", "quantization": "int8"}),
    ]:
        stream = None if name == "gpu-whole" else CHUNK
        reports[name] = export.to_tflite(
            model,
            folder / f"{name}.tflite",
            representative_data=x_train,
            verification_data=verification,
            stream=stream,
            **kwargs,
        )
    return reports


def test_streams_end_where_keras_does_on_every_target(exported):
    for name in ("cpu", "gpu", "mobile-int8"):
        stream = exported[name].stream
        assert set(stream["chunkings"]) == {"chunk", "one", "uneven"}
        for values in stream["chunkings"].values():
            if name == "mobile-int8":
                assert values["agreement"] >= MIN_INT8_AGREEMENT
            else:
                assert values["max_abs_diff"] < 1e-5, name
    drift = exported["mobile-int8"].stream["drift"]
    assert drift["steps"] >= 2000 and drift["checkpoints"] == drift["steps"] // CHUNK
    assert drift["agreement"] >= 0.95
    assert "drift" not in exported["cpu"].stream


def test_gpu_stream_file_is_fully_accelerated_and_small(exported):
    report = exported["gpu"]
    if "error" in report.gpu:
        pytest.skip(report.gpu["error"])
    assert report.gpu["fully_accelerated"]
    assert report.gpu["stream"]["chunkings"]["chunk"]["agreement"] >= 0.995
    # Unrolled over K steps, not over the sequence: smaller than the
    # whole-sequence file at W = 29, whatever the sequences' length.
    assert report.size < exported["gpu-whole"].size
    assert "WHILE" not in report.ops


def test_files_hold_the_signatures_they_say(exported):
    cpu = LiteRTModel(exported["cpu"].path)
    assert cpu.has_whole and cpu.has_stream and cpu.chunk_length is None
    gpu = LiteRTModel(exported["gpu"].path)
    assert gpu.has_stream and not gpu.has_whole and gpu.chunk_length == CHUNK
    whole = LiteRTModel(exported["gpu-whole"].path)
    assert whole.has_whole and not whole.has_stream
    with pytest.raises(ValueError, match="no 'stream' signature.*--stream"):
        whole.stream()
    assert gpu.state_spec == {
        "h0": ((16,), np.float32), "h1": ((16,), np.float32),
        "last": ((16,), np.float32),
    }


@settings(max_examples=8, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    pushes=st.lists(st.integers(0, 9), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_a_session_equals_keras_after_every_push(
    trained, exported, lengths, pushes, seed
):
    """Any number of samples per push, several streams, frames that cross
    pushes, a static-K file and a loop file: after every push, the
    probabilities of the Keras model on each stream's samples so far."""
    model, _, (x_test, _) = trained
    rng = np.random.default_rng(seed)
    sequences = export_fixtures.jittered_sequences(rng, x_test, len(lengths))
    sequences = [np.resize(s, (n, 12)) for s, n in zip(sequences, lengths)]
    for name in ("cpu", "gpu"):
        session = LiteRTModel(exported[name].path).stream(len(sequences))
        position = [0] * len(sequences)
        for k in range(len(pushes) + 8):
            sizes = [pushes[(k + i) % len(pushes)] or 1 for i in range(len(sequences))]
            parts = [s[p : p + n] for s, p, n in zip(sequences, position, sizes)]
            got = session.push(parts)
            position = [p + len(q) for p, q in zip(position, parts)]
            seen = [s[:p] for s, p in zip(sequences, position)]
            want = model(data.pad(seen, max(max(position), 1))[0]).numpy()
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_reset_and_one_stream_at_a_time(trained, exported, rng):
    model, _, (x_test, _) = trained
    a, b = x_test[0], x_test[1]
    session = LiteRTModel(exported["gpu"].path).stream(2)
    session.push(a[:5], stream=0)
    got = session.push(b, stream=1)
    np.testing.assert_allclose(got, model(b[None]).numpy()[0], atol=1e-5)
    session.reset(0)
    got = session.push(b[:3], stream=0)
    np.testing.assert_allclose(got, model(b[None, :3]).numpy()[0], atol=1e-5)
    np.testing.assert_allclose(
        session.probabilities[1], model(b[None]).numpy()[0], atol=1e-5
    )


def test_rejected_input_changes_nothing(exported, trained, rng):
    _, _, (x_test, _) = trained
    runner = LiteRTModel(exported["gpu"].path)
    session = runner.stream(2)
    session.push([x_test[0][:7], x_test[1][:3]])
    before = session.probabilities
    state = {k: v.copy() for k, v in session._state.items()}
    bad = x_test[2][:6].copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="Sample 4 .* stream 1 holds NaN"):
        session.push([x_test[2][:6], bad])
    with pytest.raises(ValueError, match="Stream 2 is out of range"):
        session.push(x_test[2][:6], stream=2)
    with pytest.raises(ValueError, match=r"shape \(6, 11\); expected \(n, 12\)"):
        session.push(x_test[2][:6, :11], stream=0)
    np.testing.assert_array_equal(session.probabilities, before)
    for name, value in session._state.items():
        np.testing.assert_array_equal(value, state[name])
    # The explicit-state call: a chunk longer than K, another model's state.
    zero = runner.initial_state(1)
    with pytest.raises(ValueError, match=r"chunk of shape \(1, 4, 12\)"):
        runner.stream_step(np.zeros((1, 5, 12)), np.array([5]), zero)
    with pytest.raises(ValueError, match="Stream state 'h0' has shape"):
        runner.stream_step(
            np.zeros((1, 4, 12)), np.array([4]), {**zero, "h0": np.zeros((1, 3))}
        )
    with pytest.raises(ValueError, match="keys"):
        runner.stream_step(np.zeros((1, 4, 12)), np.array([4]), {"h0": zero["h0"]})
    with pytest.raises(ValueError, match=r"count must lie in \[0, 4\]"):
        runner.stream_step(np.zeros((1, 4, 12)), np.array([5]), zero)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"stream": 3}, ValueError, "multiple of the model's frame_length 2"),
        (
            {"target": "mobile", "quantization": "int8", "stream": 4,
             "io_type": "int8"},
            ValueError,
            "keeps float32 inputs and outputs",
        ),
        ({"target": "gpu"}, ValueError, "or stream=K alone"),
    ],
)
def test_bad_stream_options_fail_before_any_work(
    trained, tmp_path, kwargs, error, message
):
    model, (x_train, _), _ = trained
    with pytest.raises(error, match=message):
        export.to_tflite(
            model, tmp_path / "m.tflite", representative_data=x_train, **kwargs
        )
    assert not (tmp_path / "m.tflite").exists()


def test_bidirectional_and_quantization_aware_models_cannot_stream(
    trained, tmp_path
):
    bidirectional, _, _ = export_fixtures.trained_classifier(
        units=4, num_layers=1, epochs=1
    )
    with pytest.raises(ValueError, match="bidirectional.*--no-bidirectional"):
        export.to_tflite(bidirectional, tmp_path / "m.tflite", stream=4)
    qat = export.quantize_aware(trained[0])
    with pytest.raises(ValueError, match="quantization-aware"):
        export.to_tflite(
            qat, tmp_path / "m.tflite", ExportConfig("mobile", "int8", stream=4)
        )
    assert not (tmp_path / "m.tflite").exists()
