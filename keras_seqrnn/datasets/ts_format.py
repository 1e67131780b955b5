"""Reader for the `.ts` time series format of the UEA & UCR archive."""

import math
import os
import re

import numpy as np

from keras_seqrnn.datasets import missing_values
from keras_seqrnn.datasets.sequence_dataset import NUMBER
from keras_seqrnn.datasets.sequence_dataset import DataFormatError
from keras_seqrnn.datasets.sequence_dataset import LineError
from keras_seqrnn.datasets.sequence_dataset import SequenceDataset
from keras_seqrnn.datasets.sequence_dataset import decode_line
from keras_seqrnn.datasets.sequence_dataset import float32_values
from keras_seqrnn.datasets.sequence_dataset import ordered_labels

_TAGS = {
    tag.lower(): tag
    for tag in (
        "problemName",
        "timeStamps",
        "missing",
        "univariate",
        "dimensions",
        "equalLength",
        "seriesLength",
        "classLabel",
        "data",
    )
}


class TsFormatError(DataFormatError):
    """A malformed `.ts` file; the message names the file and the line."""


def load_ts(path: str | os.PathLike, missing: str = "error") -> SequenceDataset:
    """Loads a classification dataset from a UEA/UCR `.ts` file.

    Supports univariate and multivariate series of equal or unequal length,
    missing values (`?`, when the header declares `@missing true`) and any
    class labels declared by `@classLabel`. Time-stamped series
    (`@timeStamps true`) are not supported. The file is read line by line,
    as UTF-8 (a byte-order mark is allowed).

    Args:
        path: Path of the `.ts` file.
        missing: What to do with a missing value (`?`): `"error"` (a
            `TsFormatError` naming the line, the step and the dimension),
            `"interpolate"` or `"ffill"` (see
            `keras_seqrnn.datasets.fill_missing`). Default: `"error"`.

    Returns:
        A `SequenceDataset`; numeric labels are ordered as numbers, others
        as `@classLabel` declares them.

    Raises:
        FileNotFoundError: If `path` does not exist.
        TsFormatError: If the file is malformed, uses unsupported features
            or has a missing value under `missing="error"`. The message
            names the file and the line.

    Example:

    >>> dataset = load_ts("JapaneseVowels_TRAIN.ts")  # doctest: +SKIP
    >>> dataset.sequences[0].shape  # doctest: +SKIP
    (20, 12)
    """
    missing_values.check_policy(missing)
    path = os.fspath(path)
    parser = _Parser(missing)
    line_number = 0
    try:
        with open(path, "rb") as file:
            for line_number, raw in enumerate(file, start=1):
                parser.feed(decode_line(raw, line_number).strip())
            return parser.finish()
    except LineError as error:
        raise TsFormatError(
            f"{path}, line {max(line_number, 1)}: {error}"
        ) from None


class _Parser:
    """Incremental parser of the lines of a `.ts` file."""

    def __init__(self, missing):
        self.missing = missing
        self.header = {}
        self.in_data = False
        self.sequences = []
        self.labels = []
        self.label_names = ()
        self.label_indices = {}
        self.dimensions = None
        self.dimensions_source = None
        self.series_length = None
        self.series_length_source = None

    def feed(self, line):
        if not line or line.startswith("#"):
            return
        if not line.startswith("@"):
            if not self.in_data:
                raise LineError("found a data line before the `@data` line.")
            self._parse_case(line)
        elif self.in_data:
            raise LineError("found a header line after the `@data` line.")
        else:
            self._parse_header(line)

    def finish(self):
        if not self.in_data:
            raise LineError(
                "reached the end of the file without a `@data` line."
            )
        if not self.sequences:
            raise LineError("the file has no cases after the `@data` line.")
        labels = np.array(self.labels, dtype="int32")
        return SequenceDataset(
            sequences=self.sequences,
            labels=labels if self.label_names else None,
            label_names=self.label_names,
            problem_name=self.header.get("problemname"),
        )

    def _parse_header(self, line):
        tag, value = re.fullmatch(r"@(\S*)\s*(.*)", line).groups()
        key = tag.lower()
        if key not in _TAGS:
            raise LineError(
                f"unknown header tag `@{tag}`; expected one of "
                f"{', '.join('@' + name for name in _TAGS.values())}."
            )
        if key in self.header:
            raise LineError(f"duplicate header tag `@{_TAGS[key]}`.")
        if key == "problemname":
            self.header[key] = value
        elif key in ("dimensions", "serieslength"):
            if not value.isdecimal() or int(value) == 0:
                raise LineError(
                    f"`@{_TAGS[key]}` expects a positive integer, got "
                    f"{value!r}."
                )
            self.header[key] = int(value)
        elif key == "classlabel":
            flag, *names = value.split() or [""]
            if _parse_boolean(key, flag) != bool(names):
                raise LineError(
                    "expected `@classLabel true` followed by the class labels, "
                    f"or `@classLabel false`, got {line!r}."
                )
            if len(set(names)) != len(names):
                raise LineError(
                    f"`@classLabel` declares a label twice: {line!r}."
                )
            self.header[key] = tuple(names)
        elif key == "data":
            self._start_data()
        else:
            self.header[key] = _parse_boolean(key, value)
            if key == "timestamps" and self.header[key]:
                raise LineError(
                    "time-stamped series (`@timeStamps true`) are not "
                    "supported."
                )

    def _start_data(self):
        if "classlabel" not in self.header:
            raise LineError(
                "missing `@classLabel` header line before `@data`."
            )
        self.in_data = True
        self.label_names = ordered_labels(self.header["classlabel"])
        self.label_indices = {
            name: index for index, name in enumerate(self.label_names)
        }
        self.dimensions = self.header.get("dimensions")
        self.dimensions_source = "as declared by `@dimensions`"
        if self.header.get("univariate"):
            if self.dimensions not in (None, 1):
                raise LineError(
                    "`@univariate true` contradicts "
                    f"`@dimensions {self.dimensions}`."
                )
            self.dimensions = 1
            self.dimensions_source = "as declared by `@univariate true`"
        if self.header.get("equallength"):
            self.series_length = self.header.get("serieslength")
            self.series_length_source = "as declared by `@seriesLength`"

    def _parse_case(self, line):
        fields = line.split(":")
        if self.label_names:
            if len(fields) < 2:
                raise LineError(
                    "expected the dimensions followed by `:` and the class "
                    "label, but the line has no `:`."
                )
            label = fields.pop().strip()
            if label not in self.label_indices:
                raise LineError(
                    f"class label {label!r} is not declared in `@classLabel` "
                    f"(declared: {', '.join(self.label_names)})."
                )
            self.labels.append(self.label_indices[label])
        if self.dimensions is None:
            self.dimensions = len(fields)
            self.dimensions_source = "as in the first case"
        elif len(fields) != self.dimensions:
            raise LineError(
                f"expected {self.dimensions} dimensions "
                f"({self.dimensions_source}), got {len(fields)}."
            )
        columns = [
            self._parse_values(field, dimension)
            for dimension, field in enumerate(fields, start=1)
        ]
        length = len(columns[0])
        for dimension, column in enumerate(columns[1:], start=2):
            if len(column) != length:
                raise LineError(
                    f"dimension {dimension} has {len(column)} values but "
                    f"dimension 1 has {length} (all dimensions of a case must "
                    "have the same length)."
                )
        if self.header.get("equallength"):
            if self.series_length is None:
                self.series_length = length
                self.series_length_source = "as in the first case"
            elif length != self.series_length:
                raise LineError(
                    f"the case has length {length} but `@equalLength true` "
                    f"requires length {self.series_length} "
                    f"({self.series_length_source})."
                )
        try:
            sequence = missing_values.fill_missing(
                np.stack(columns, axis=1), self.missing
            )
        except missing_values.MissingValueError as error:
            raise LineError(f"case {len(self.sequences) + 1}: {error}") from None
        self.sequences.append(sequence)

    def _parse_values(self, field, dimension):
        if not field.strip():
            raise LineError(f"dimension {dimension} has no values.")
        values = []
        for text in field.split(","):
            text = text.strip()
            if text == "?":
                if not self.header.get("missing"):
                    raise LineError(
                        f"missing value `?` in dimension {dimension}, but the "
                        "header does not declare `@missing true`."
                    )
                values.append(math.nan)
                continue
            if not NUMBER.fullmatch(text):
                raise LineError(
                    f"value {text!r} in dimension {dimension} is not a number."
                )
            values.append(float(text))
        return float32_values(values, f"dimension {dimension}")


def _parse_boolean(key, value):
    if value.lower() not in ("true", "false"):
        raise LineError(
            f"`@{_TAGS[key]}` expects `true` or `false`, got {value!r}."
        )
    return value.lower() == "true"
