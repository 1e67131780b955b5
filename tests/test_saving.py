import zipfile

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import keras_seqrnn
from keras_seqrnn import ModelFileError
from keras_seqrnn import load_classifier


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = keras_seqrnn.build_classifier(3, 2, units=4, num_layers=1)
    model.compile("adam")
    model.fit(np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32"),
              np.arange(8) % 2, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    model.save(path)
    return model, path


def test_loads_the_classifier_it_saved(saved, rng):
    model, path = saved
    loaded = load_classifier(path)
    x = rng.normal(size=(4, 6, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0),
                               model.predict(x, verbose=0), atol=1e-6)


def test_other_files_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match=f"^{tmp_path / 'none.keras'}: no such model file"):
        load_classifier(tmp_path / "none.keras")
    plain = tmp_path / "plain.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(plain)
    with pytest.raises(ModelFileError, match="a Sequential, not a keras_seqrnn SequenceClassifier"):
        load_classifier(plain)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fuzzed_files_load_or_raise_a_model_file_error(saved, tmp_path_factory, data):
    """Truncated, overwritten, re-zipped and random files either load or
    raise `ModelFileError` naming the file: never another exception."""
    _, path = saved
    blob = bytearray(path.read_bytes())
    damage = data.draw(st.sampled_from(["truncate", "overwrite", "member", "random"]))
    target = tmp_path_factory.mktemp("fuzz") / "fuzz.keras"
    if damage == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif damage == "overwrite":
        for _ in range(data.draw(st.integers(1, 16))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    elif damage == "random":
        blob = bytearray(data.draw(st.binary(max_size=400)))
    if damage == "member":
        # A valid zip whose members are cut short.
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as copy:
            for info in source.infolist():
                content = source.read(info)
                copy.writestr(info, content[: data.draw(st.integers(0, len(content)))])
    else:
        target.write_bytes(bytes(blob))
    try:
        load_classifier(target)
    except ModelFileError as error:
        assert str(error).startswith(str(target))
