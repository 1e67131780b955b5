import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_seqrnn
from export import LiteRTModel
from export import TFLiteFileError
from export import frozen_model
from export import graph
from export import litert_model
from export import model_file


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A 3-feature classifier as a loop file and an unrolled batch-2 file."""
    model = keras_seqrnn.build_classifier(3, 2, units=5, label_names=["no", "yes"])
    model.build((None, None, 3))
    frozen = frozen_model.freeze(model)
    folder = tmp_path_factory.mktemp("litert")
    paths = {}
    for name, kwargs in [
        ("loop", {"unroll": False}),
        ("unrolled", {"unroll": True, "batch_size": 2, "max_length": 7}),
    ]:
        content = graph.convert(
            {"serving_default": graph.classifier_function(frozen, **kwargs)}, None
        )
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(
            model_file.finalize(content, {"label_names": ["no", "yes"]})
        )
    return model, paths


def _keras(model, sequences):
    padded, _ = keras_seqrnn.data.pad(sequences)
    return np.asarray(model(padded))


@pytest.mark.parametrize("name", ["loop", "unrolled"])
def test_list_and_padded_inputs_match_keras(models, name, rng):
    model, paths = models
    runner = LiteRTModel(paths[name], num_threads=1)
    sequences = [rng.normal(size=(n, 3)).astype(np.float32) for n in (7, 1, 4, 6, 2)]
    expected = _keras(model, sequences)
    np.testing.assert_allclose(runner.predict(sequences), expected, atol=1e-5)
    padded, lengths = keras_seqrnn.data.pad(sequences)
    np.testing.assert_allclose(runner.predict(padded), expected, atol=1e-5)
    np.testing.assert_allclose(runner.predict(padded, lengths), expected, atol=1e-5)
    zero_padded, _ = keras_seqrnn.data.pad(sequences, value=0.0)
    np.testing.assert_allclose(
        runner.predict(zero_padded, lengths), expected, atol=1e-5
    )
    labels = runner.predict_labels(sequences)
    assert labels == [["no", "yes"][i] for i in expected.argmax(1)]
    assert runner.predict([]).shape == (0, 2)
    assert runner.latency(sequences[0], runs=3, warmup=1) > 0


def test_shapes_come_from_the_model(models):
    _, paths = models
    loop, unrolled = LiteRTModel(paths["loop"]), LiteRTModel(paths["unrolled"])
    assert (loop.batch_size, loop.max_length) == (None, None)
    assert (unrolled.batch_size, unrolled.max_length) == (2, 7)
    assert unrolled.num_features == 3 and unrolled.num_classes == 2
    assert unrolled.label_names == ["no", "yes"]


@pytest.mark.parametrize(
    "sequences, lengths, message",
    [
        ([np.ones((8, 3))], None, "Sequence 0 has 8 steps, more than this model's max_length 7"),
        ([np.ones((2, 4))], None, "takes 3 features per step, got 4"),
        ([np.ones(3)], None, "Sequence 0 has shape \\(3,\\)"),
        ([np.ones((2, 3)), np.ones((2, 2))], None, "Sequence 1 has 2 features"),
        (np.ones((2, 3)), None, "got an array of shape \\(2, 3\\)"),
        (np.ones((2, 4, 3)), [1], "Expected 2 lengths"),
        (np.ones((2, 4, 3)), [1, 5], "Lengths must lie in \\[0, 4\\]"),
        ([np.ones((2, 3))], [2], "Give lengths only with a padded array"),
    ],
)
def test_bad_input_is_named(models, sequences, lengths, message):
    _, paths = models
    with pytest.raises(ValueError, match=message):
        LiteRTModel(paths["unrolled"]).predict(sequences, lengths)


def test_padded_lengths_follow_nan_padding():
    padded = np.full((3, 5, 2), np.nan, np.float32)
    padded[0, :2] = 1
    padded[1, :4] = 0  # zero steps are data
    padded[1, 3, 1] = np.nan  # a step with one NaN is not padding...
    with pytest.raises(ValueError, match="Sequence 1 has a NaN .* at step 3"):
        litert_model.prepare_sequences(padded, None, 2)
    padded[1, 3, 1] = 2.0
    zeroed, lengths = litert_model.prepare_sequences(padded, None, 2)
    np.testing.assert_array_equal(lengths, [2, 4, 0])
    # ...and the model gets zeros for the padding.
    assert np.isfinite(zeroed).all() and not zeroed[2].any()


def test_lengths_must_be_whole_numbers():
    padded = np.ones((2, 4, 2), np.float32)
    with pytest.raises(ValueError, match="whole numbers"):
        litert_model.prepare_sequences(padded, np.array([1.5, 2.0]), 2)
    _, lengths = litert_model.prepare_sequences(padded, np.array([1.0, 2.0]), 2)
    np.testing.assert_array_equal(lengths, [1, 2])


def test_other_files_are_refused(tmp_path, models):
    _, paths = models
    with pytest.raises(ValueError, match="Unknown accelerator 'npu'"):
        LiteRTModel(paths["loop"], accelerator="npu")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(TFLiteFileError, match=f"{junk}: Not a TFLite flatbuffer"):
        LiteRTModel(junk)
    with pytest.raises(FileNotFoundError):
        LiteRTModel(tmp_path / "missing.tflite")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fuzzed_files_load_or_raise_a_tflite_file_error(models, tmp_path_factory, data):
    """Truncated, overwritten and random files either load or raise
    `TFLiteFileError` naming the file: never another exception."""
    _, paths = models
    blob = bytearray(paths[data.draw(st.sampled_from(["loop", "unrolled"]))].read_bytes())
    damage = data.draw(st.sampled_from(["truncate", "overwrite", "random"]))
    if damage == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif damage == "overwrite":
        for _ in range(data.draw(st.integers(1, 16))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    else:
        blob = bytearray(data.draw(st.binary(max_size=400)))
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.tflite"
    path.write_bytes(bytes(blob))
    try:
        LiteRTModel(path)
    except TFLiteFileError as error:
        assert str(error).startswith(str(path))
