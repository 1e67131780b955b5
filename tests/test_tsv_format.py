import pathlib
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_seqrnn.datasets import DataFormatError
from keras_seqrnn.datasets import TsvFormatError
from keras_seqrnn.datasets import load_dataset
from keras_seqrnn.datasets import load_tsv

ARCHIVE = pathlib.Path(__file__).parent / "data" / "ucr"


def write_tsv(directory, rows, name="toy.tsv"):
    path = directory / name
    path.write_text("".join("\t".join(map(str, row)) + "\n" for row in rows))
    return path


def test_unequal_lengths_nan_padding_and_numeric_labels(tmp_path):
    rows = [
        ["10", 0.5, 0.0, 0.0, -1.0],
        ["9", 1.0, 2.0, "NaN", "NaN"],
        ["-1", 0.0, "NaN", "NaN", "NaN"],
    ]
    dataset = load_tsv(write_tsv(tmp_path, rows))
    assert dataset.label_names == ("-1", "9", "10")
    np.testing.assert_array_equal(dataset.labels, [2, 1, 0])
    # Zeros are data; only the trailing NaNs are padding.
    np.testing.assert_array_equal(dataset.sequences[0][:, 0], [0.5, 0, 0, -1])
    np.testing.assert_array_equal(dataset.sequences[1][:, 0], [1, 2])
    np.testing.assert_array_equal(dataset.sequences[2][:, 0], [0])
    assert all(s.dtype == np.float32 and s.shape[1] == 1 for s in dataset.sequences)


def test_text_labels_are_sorted(tmp_path):
    rows = [["dog", 1, 2], ["cat", 3, 4], ["dog", 5, 6]]
    dataset = load_tsv(write_tsv(tmp_path, rows))
    assert dataset.label_names == ("cat", "dog")
    np.testing.assert_array_equal(dataset.labels, [1, 0, 1])


INTERIOR_NAN = [["1", 1.0, 2.0, 3.0, 4.0], ["2", 1.0, "NaN", "NaN", 7.0]]


@pytest.mark.parametrize(
    "missing, expected",
    [("interpolate", [1, 3, 5, 7]), ("ffill", [1, 1, 1, 7])],
    ids=["interpolate", "ffill"],
)
def test_interior_nan_is_filled_by_the_policy(tmp_path, missing, expected):
    dataset = load_tsv(write_tsv(tmp_path, INTERIOR_NAN), missing=missing)
    np.testing.assert_array_equal(dataset.sequences[1][:, 0], expected)


MALFORMED = {
    "interior_nan": (INTERIOR_NAN, 2, "series 2: step 2, dimension 1 is missing"),
    "all_nan": ([["1", 1, 2], ["2", "NaN", "NaN"]], 2, "no value (all NaN)"),
    "ragged_rows": (
        [["1", 1, 2, 3], ["2", 1, 2]],
        2,
        "the line has 2 values, line 1 has 3; the archive pads",
    ),
    "not_a_number": ([["1", 1, "x"]], 1, "value 'x' in column 3"),
    "inf": ([["1", 1, "inf"]], 1, "value 'inf' in column 3"),
    "underscore": ([["1", "1_000"]], 1, "value '1_000' in column 2"),
    "overflow": ([["1", "1e99"]], 1, "too large for float32"),
    "no_label": ([["", 1, 2]], 1, "no class label"),
    "one_column": ([["1,2,3"]], 1, "one column"),
}


@pytest.mark.parametrize(
    "rows, line, message", MALFORMED.values(), ids=MALFORMED.keys()
)
def test_malformed_file_names_file_and_line(tmp_path, rows, line, message):
    path = write_tsv(tmp_path, rows)
    with pytest.raises(TsvFormatError) as info:
        load_tsv(path)
    assert str(info.value).startswith(f"{path}, line {line}: ")
    assert message in str(info.value)


def test_empty_file_and_encoding(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("\n\n")
    with pytest.raises(TsvFormatError, match="holds no series"):
        load_tsv(path)
    path.write_bytes(b"\xef\xbb\xbf1\t2\t3\n")
    assert load_tsv(path).label_names == ("1",)
    path.write_bytes(b"1\t2\t3\n1\t\xe92\t3\n")
    with pytest.raises(TsvFormatError, match=re.escape(f"{path}, line 2: not UTF-8")):
        load_tsv(path)


def test_the_archive_files_as_shipped():
    wiimote = load_tsv(
        ARCHIVE / "AllGestureWiimoteX" / "AllGestureWiimoteX_TRAIN_first30.tsv"
    )
    lengths = [len(s) for s in wiimote.sequences]
    assert (len(lengths), min(lengths), max(lengths)) == (30, 53, 329)
    # Runs of exact zeros inside series are data.
    assert sum(int((s == 0).sum()) for s in wiimote.sequences) == 447
    chinatown = load_tsv(ARCHIVE / "Chinatown" / "Chinatown_TEST.tsv")
    assert len(chinatown.sequences) == 343
    assert {s.shape for s in chinatown.sequences} == {(24, 1)}
    with pytest.raises(TsvFormatError, match="line 8: series 8: step 142"):
        load_tsv(f"{ARCHIVE}/DodgerLoopGame/DodgerLoopGame_TRAIN.tsv")
    dodger = load_tsv(
        f"{ARCHIVE}/DodgerLoopGame/DodgerLoopGame_TRAIN.tsv", missing="interpolate"
    )
    assert all(np.isfinite(s).all() for s in dodger.sequences)


def test_load_dataset_by_extension_and_content(tmp_path):
    tsv = write_tsv(tmp_path, [["1", 1, 2]], name="data.txt")
    assert load_dataset(tsv).sequences[0].shape == (2, 1)
    ts = tmp_path / "data.csv"
    ts.write_text("@classLabel true a\n@data\n1,2,3:a\n")
    assert load_dataset(ts).sequences[0].shape == (3, 1)
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_dataset(tmp_path / "absent.tsv")
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_dataset(tmp_path)


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    data=st.data(),
)
def test_round_trip(tmp_path_factory, lengths, data):
    values = st.floats(width=32, allow_nan=False, allow_infinity=False)
    width = max(lengths)
    series = [
        np.array(data.draw(st.lists(values, min_size=n, max_size=n)), np.float32)
        for n in lengths
    ]
    labels = data.draw(st.lists(st.sampled_from(["3", "-2", "12"]),
                                min_size=len(lengths), max_size=len(lengths)))
    rows = [
        [label, *map(repr, map(float, s)), *["NaN"] * (width - len(s))]
        for label, s in zip(labels, series)
    ]
    dataset = load_tsv(write_tsv(tmp_path_factory.mktemp("tsv"), rows))
    assert dataset.label_names == tuple(sorted(set(labels), key=float))
    for loaded, expected in zip(dataset.sequences, series, strict=True):
        np.testing.assert_array_equal(loaded[:, 0], expected)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fuzzed_files_load_or_raise_a_format_error(tmp_path_factory, data):
    """Mutated archive lines and random bytes either load or raise the
    package's own error, naming the file (and line): never another
    exception."""
    blob = bytearray((ARCHIVE / "Chinatown" / "Chinatown_TRAIN.tsv").read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.sampled_from(b"\t\n\xff-.eN0a \r"))
    if data.draw(st.booleans()):
        blob = bytearray(data.draw(st.binary(max_size=200)))
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.tsv"
    path.write_bytes(bytes(blob))
    missing = data.draw(st.sampled_from(["error", "interpolate", "ffill"]))
    try:
        dataset = load_tsv(path, missing=missing)
    except DataFormatError as error:
        assert str(error).startswith(str(path))
    else:
        assert all(np.isfinite(s).all() and len(s) for s in dataset.sequences)
