import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_seqrnn.datasets import TsFormatError
from keras_seqrnn.datasets import load_ts

# Line 9 holds the first case of a file starting with this header.
HEADER = (
    "@problemName Toy",
    "@timeStamps false",
    "@missing false",
    "@univariate false",
    "@dimensions 2",
    "@equalLength false",
    "@classLabel true cat dog",
    "@data",
)


def write_ts(directory, lines, name="toy.ts"):
    path = directory / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def format_case(sequence, label=None):
    fields = [
        ",".join("?" if np.isnan(v) else repr(float(v)) for v in column)
        for column in sequence.T
    ]
    return ":".join(fields + ([] if label is None else [label]))


def test_multivariate_unequal_length_string_labels(tmp_path):
    rng = np.random.default_rng(0)
    sequences = [rng.normal(size=(n, 2)).astype("float32") for n in (3, 5, 1)]
    names = ["dog", "cat", "dog"]
    lines = HEADER + tuple(map(format_case, sequences, names))
    dataset = load_ts(write_ts(tmp_path, lines))
    assert dataset.problem_name == "Toy"
    assert dataset.label_names == ("cat", "dog")
    assert dataset.labels.dtype == np.int32
    np.testing.assert_array_equal(dataset.labels, [1, 0, 1])
    for loaded, expected in zip(dataset.sequences, sequences, strict=True):
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, expected)


def test_univariate_equal_length_integer_labels_comments_and_case(tmp_path):
    lines = (
        "# A comment, then a blank line.",
        "",
        "@PROBLEMNAME Tiny",
        "@univariate TRUE",
        "@equallength true",
        "@seriesLength 3",
        "@classlabel true 10 2",
        "# Comments may appear anywhere.",
        "@DATA",
        "1,2,3:2",
        "",
        "  4.5, -5e-1 ,6:10  ",
    )
    dataset = load_ts(write_ts(tmp_path, lines))
    # Numeric labels in numeric order, whatever order `@classLabel` gives.
    assert dataset.label_names == ("2", "10")
    np.testing.assert_array_equal(dataset.labels, [0, 1])
    np.testing.assert_array_equal(dataset.sequences[0], [[1], [2], [3]])
    np.testing.assert_array_equal(dataset.sequences[1], [[4.5], [-0.5], [6]])


def test_without_labels(tmp_path):
    lines = ("@classLabel false", "@data", "1,2:3,4", "5:6")
    dataset = load_ts(write_ts(tmp_path, lines))
    assert dataset.labels is None
    assert dataset.label_names == ()
    assert dataset.problem_name is None
    np.testing.assert_array_equal(dataset.sequences[1], [[5, 6]])


MISSING = ("@missing true", "@classLabel true a", "@data", "1,2:4,5:a",
           "1,?,3,?:?,5,6,8:a")


def test_missing_values_are_an_error_by_default(tmp_path):
    path = write_ts(tmp_path, MISSING)
    with pytest.raises(TsFormatError) as info:
        load_ts(path)
    assert str(info.value) == (
        f"{path}, line 5: case 2: step 1, dimension 2 is missing; choose a "
        "missing-value policy: 'interpolate' or 'ffill'."
    )


@pytest.mark.parametrize(
    "missing, expected",
    [
        ("interpolate", [[1, 5], [2, 5], [3, 6], [3, 8]]),
        ("ffill", [[1, 5], [1, 5], [3, 6], [3, 8]]),
    ],
    ids=["interpolate", "ffill"],
)
def test_missing_values_filled(tmp_path, missing, expected):
    dataset = load_ts(write_ts(tmp_path, MISSING), missing=missing)
    np.testing.assert_array_equal(dataset.sequences[1], expected)


@pytest.mark.parametrize(
    "token", ["nan", "NaN", "inf", "-inf", "1_000", "0x10", "1e999"]
)
def test_tokens_python_accepts_are_not_numbers(tmp_path, token):
    path = write_ts(tmp_path, HEADER + (f"1,2:3,{token}:cat",))
    with pytest.raises(TsFormatError, match=re.escape(f"{path}, line 9: ")):
        load_ts(path)


def test_byte_order_mark_and_non_utf8(tmp_path):
    path = tmp_path / "bom.ts"
    path.write_bytes(
        "\ufeff".encode() + "\n".join(HEADER + ("1,2:3,4:cat",)).encode()
    )
    assert len(load_ts(path).sequences) == 1
    path.write_bytes(
        "\n".join(HEADER).encode() + b"\n1,2:3,\xff4:cat\n"
    )
    with pytest.raises(TsFormatError, match=re.escape(f"{path}, line 9: not UTF-8")):
        load_ts(path)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), dimensions=st.integers(1, 3))
def test_round_trip(tmp_path_factory, data, dimensions):
    names = ("cat", "dog", "7")
    values = st.floats(width=32, allow_nan=False, allow_infinity=False)
    cases = data.draw(
        st.lists(
            st.tuples(
                st.integers(1, 5).flatmap(
                    lambda n: st.lists(
                        st.lists(
                            values, min_size=dimensions, max_size=dimensions
                        ),
                        min_size=n,
                        max_size=n,
                    )
                ),
                st.sampled_from(names),
            ),
            min_size=1,
            max_size=5,
        )
    )
    sequences = [np.array(rows, dtype="float32") for rows, _ in cases]
    lines = (
        f"@dimensions {dimensions}",
        f"@classLabel true {' '.join(names)}",
        "@data",
    ) + tuple(format_case(s, name) for s, (_, name) in zip(sequences, cases))
    dataset = load_ts(write_ts(tmp_path_factory.mktemp("ts"), lines))
    np.testing.assert_array_equal(
        dataset.labels, [names.index(name) for _, name in cases]
    )
    for loaded, expected in zip(dataset.sequences, sequences, strict=True):
        np.testing.assert_array_equal(loaded, expected)


def with_header(tag, line):
    return tuple(line if h.startswith(tag) else h for h in HEADER)


def without_header(tag):
    return tuple(h for h in HEADER if not h.startswith(tag))


EQUAL_LENGTH = with_header("@equalLength", "@equalLength true")
# Each case: file lines, line number of the error, part of the message.
MALFORMED = {
    "no_data_tag": (HEADER[:-1], 7, "without a `@data` line"),
    "data_before_data_tag": (
        HEADER[:-1] + ("1,2:3,4:cat",),
        8,
        "data line before the `@data`",
    ),
    "no_cases": (HEADER, 8, "no cases"),
    "unknown_tag": (("@classLable true a",) + HEADER, 1, "tag `@classLable`"),
    "no_class_label_tag": (
        without_header("@classLabel"),
        7,
        "missing `@classLabel`",
    ),
    "duplicate_tag": (("@missing false",) + HEADER, 4, "duplicate header tag"),
    "bad_boolean": (with_header("@missing", "@missing yes"), 3, "`true` or"),
    "non_integer_dimensions": (
        with_header("@dimensions", "@dimensions two"),
        5,
        "`@dimensions` expects a positive integer, got 'two'",
    ),
    "zero_dimensions": (
        with_header("@dimensions", "@dimensions 0"),
        5,
        "positive integer, got '0'",
    ),
    "class_label_true_without_labels": (
        with_header("@classLabel", "@classLabel true"),
        7,
        "`@classLabel true` followed by the class labels",
    ),
    "class_label_false_with_labels": (
        with_header("@classLabel", "@classLabel false a"),
        7,
        "or `@classLabel false`",
    ),
    "duplicate_label": (
        with_header("@classLabel", "@classLabel true a a"),
        7,
        "label twice",
    ),
    "time_stamps": (
        with_header("@timeStamps", "@timeStamps true"),
        2,
        "(`@timeStamps true`) are not supported",
    ),
    "univariate_contradicts_dimensions": (
        with_header("@univariate", "@univariate true"),
        8,
        "`@univariate true` contradicts `@dimensions 2`",
    ),
    "header_after_data": (
        HEADER + ("1,2:3,4:cat", "@missing true"),
        10,
        "header line after the `@data`",
    ),
    "dimensions_differ_from_header": (
        HEADER + ("1,2:3,4:cat", "1,2:3,4:5,6:dog"),
        10,
        "expected 2 dimensions (as declared by `@dimensions`), got 3",
    ),
    "dimensions_differ_from_first_case": (
        without_header("@dimensions") + ("1,2:3,4:cat", "1,2:dog"),
        9,
        "expected 2 dimensions (as in the first case), got 1",
    ),
    "ragged_dimensions": (
        HEADER + ("1,2:3,4:cat", "1,2,3:4,5:dog"),
        10,
        "dimension 2 has 2 values but dimension 1 has 3 (all dimensions",
    ),
    "non_numeric_value": (HEADER + ("1,2:3,x:cat",), 9, "value 'x' in"),
    "empty_value": (HEADER + ("1,2:3,,4:cat",), 9, "value '' in dimension 2"),
    "empty_dimension": (HEADER + ("1,2::cat",), 9, "dimension 2 has no values"),
    "undeclared_missing_value": (
        HEADER + ("1,2:3,?:cat",),
        9,
        "missing value `?` in dimension 2",
    ),
    "undeclared_label": (HEADER + ("1,2:3,4:cow",), 9, "label 'cow' is not"),
    "no_label": (HEADER + ("1,2,3,4",), 9, "the line has no `:`"),
    "unequal_lengths": (
        EQUAL_LENGTH + ("1,2:3,4:cat", "1,2,3:4,5,6:dog"),
        10,
        "length 3 but `@equalLength true` requires length 2 (as in the first",
    ),
    "length_differs_from_series_length": (
        EQUAL_LENGTH[:-1] + ("@seriesLength 3", "@data", "1,2:3,4:cat"),
        10,
        "requires length 3 (as declared by `@seriesLength`)",
    ),
}


@pytest.mark.parametrize(
    "lines, line_number, message", MALFORMED.values(), ids=MALFORMED.keys()
)
def test_malformed_file_names_file_and_line(
    tmp_path, lines, line_number, message
):
    path = write_ts(tmp_path, lines, name="Broken_TRAIN.ts")
    with pytest.raises(TsFormatError) as info:
        load_ts(path)
    assert str(info.value).startswith(f"{path}, line {line_number}: ")
    assert message in str(info.value)


def test_format_error_is_a_value_error():
    assert issubclass(TsFormatError, ValueError)


def test_empty_file(tmp_path):
    path = write_ts(tmp_path, ())
    with pytest.raises(TsFormatError, match=re.escape(f"{path}, line 1: ")):
        load_ts(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Absent_TRAIN.ts"):
        load_ts(tmp_path / "Absent_TRAIN.ts")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fuzzed_files_load_or_raise_a_format_error(tmp_path_factory, data):
    """Mutated lines of a real file and random bytes either load or raise
    `TsFormatError`, naming the file (and line): never another exception."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    cases = [
        format_case(rng.normal(size=(rng.integers(1, 6), 2)), label)
        for label in ("cat", "dog", "cat")
    ]
    blob = bytearray(("\n".join(HEADER + tuple(cases)) + "\n").encode())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.sampled_from(b":,\n@?\xff-.eN0a \r\t"))
    if data.draw(st.booleans()):
        blob = bytearray(data.draw(st.binary(max_size=200)))
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.ts"
    path.write_bytes(bytes(blob))
    missing = data.draw(st.sampled_from(["error", "interpolate", "ffill"]))
    try:
        dataset = load_ts(path, missing=missing)
    except TsFormatError as error:
        assert str(error).startswith(str(path))
    else:
        assert all(np.isfinite(s).all() and len(s) for s in dataset.sequences)
