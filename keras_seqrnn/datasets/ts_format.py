"""Reader for the `.ts` time series format of the UEA & UCR archive."""

import math
import os
import re
from typing import NamedTuple

import numpy as np

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


class TsFormatError(ValueError):
    """Raised when a `.ts` file is malformed.

    The message starts with the file path and the 1-based line number of the
    problem.
    """


class TsDataset(NamedTuple):
    """Contents of a `.ts` file.

    Attributes:
        sequences: List of float32 arrays of shape `(length, dimensions)`,
            one per case, with NaN for missing values.
        labels: int32 array of indices into `label_names`, one per case, or
            `None` when the file declares `@classLabel false`.
        label_names: Class labels in the order declared by `@classLabel`,
            empty when the file has no labels.
        problem_name: Value of `@problemName`, or `None` when absent.
    """

    sequences: list[np.ndarray]
    labels: np.ndarray | None
    label_names: tuple[str, ...]
    problem_name: str | None


class _LineError(Exception):
    """A problem on the current line, located by `load_ts`."""


def load_ts(path: str | os.PathLike) -> TsDataset:
    """Loads a classification dataset from a UEA/UCR `.ts` file.

    Supports univariate and multivariate series of equal or unequal length,
    missing values (`?`, when the header declares `@missing true`) and any
    class labels declared by `@classLabel`. Time-stamped series
    (`@timeStamps true`) are not supported. The file is read line by line.

    Args:
        path: Path of the `.ts` file.

    Returns:
        A `TsDataset`.

    Raises:
        FileNotFoundError: If `path` does not exist.
        TsFormatError: If the file is malformed or uses unsupported
            features. The message names the file and the line.

    Example:

    >>> dataset = load_ts("JapaneseVowels_TRAIN.ts")  # doctest: +SKIP
    >>> dataset.sequences[0].shape  # doctest: +SKIP
    (20, 12)
    """
    path = os.fspath(path)
    parser = _Parser()
    line_number = 0
    try:
        with open(path, encoding="utf-8") as file:
            for line_number, line in enumerate(file, start=1):
                parser.feed(line.strip())
            return parser.finish()
    except _LineError as error:
        raise TsFormatError(
            f"{path}, line {max(line_number, 1)}: {error}"
        ) from None


class _Parser:
    """Incremental parser of the lines of a `.ts` file."""

    def __init__(self):
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
                raise _LineError("found a data line before the `@data` line.")
            self._parse_case(line)
        elif self.in_data:
            raise _LineError("found a header line after the `@data` line.")
        else:
            self._parse_header(line)

    def finish(self):
        if not self.in_data:
            raise _LineError(
                "reached the end of the file without a `@data` line."
            )
        if not self.sequences:
            raise _LineError("the file has no cases after the `@data` line.")
        labels = np.array(self.labels, dtype="int32")
        return TsDataset(
            sequences=self.sequences,
            labels=labels if self.label_names else None,
            label_names=self.label_names,
            problem_name=self.header.get("problemname"),
        )

    def _parse_header(self, line):
        tag, value = re.fullmatch(r"@(\S*)\s*(.*)", line).groups()
        key = tag.lower()
        if key not in _TAGS:
            raise _LineError(
                f"unknown header tag `@{tag}`; expected one of "
                f"{', '.join('@' + name for name in _TAGS.values())}."
            )
        if key in self.header:
            raise _LineError(f"duplicate header tag `@{_TAGS[key]}`.")
        if key == "problemname":
            self.header[key] = value
        elif key in ("dimensions", "serieslength"):
            if not value.isdecimal() or int(value) == 0:
                raise _LineError(
                    f"`@{_TAGS[key]}` expects a positive integer, got "
                    f"{value!r}."
                )
            self.header[key] = int(value)
        elif key == "classlabel":
            flag, *names = value.split() or [""]
            if _parse_boolean(key, flag) != bool(names):
                raise _LineError(
                    "expected `@classLabel true` followed by the class labels, "
                    f"or `@classLabel false`, got {line!r}."
                )
            if len(set(names)) != len(names):
                raise _LineError(
                    f"`@classLabel` declares a label twice: {line!r}."
                )
            self.header[key] = tuple(names)
        elif key == "data":
            self._start_data()
        else:
            self.header[key] = _parse_boolean(key, value)
            if key == "timestamps" and self.header[key]:
                raise _LineError(
                    "time-stamped series (`@timeStamps true`) are not "
                    "supported."
                )

    def _start_data(self):
        if "classlabel" not in self.header:
            raise _LineError(
                "missing `@classLabel` header line before `@data`."
            )
        self.in_data = True
        self.label_names = self.header["classlabel"]
        self.label_indices = {
            name: index for index, name in enumerate(self.label_names)
        }
        self.dimensions = self.header.get("dimensions")
        self.dimensions_source = "as declared by `@dimensions`"
        if self.header.get("univariate"):
            if self.dimensions not in (None, 1):
                raise _LineError(
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
                raise _LineError(
                    "expected the dimensions followed by `:` and the class "
                    "label, but the line has no `:`."
                )
            label = fields.pop().strip()
            if label not in self.label_indices:
                raise _LineError(
                    f"class label {label!r} is not declared in `@classLabel` "
                    f"(declared: {', '.join(self.label_names)})."
                )
            self.labels.append(self.label_indices[label])
        if self.dimensions is None:
            self.dimensions = len(fields)
            self.dimensions_source = "as in the first case"
        elif len(fields) != self.dimensions:
            raise _LineError(
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
                raise _LineError(
                    f"dimension {dimension} has {len(column)} values but "
                    f"dimension 1 has {length} (all dimensions of a case must "
                    "have the same length)."
                )
        if self.header.get("equallength"):
            if self.series_length is None:
                self.series_length = length
                self.series_length_source = "as in the first case"
            elif length != self.series_length:
                raise _LineError(
                    f"the case has length {length} but `@equalLength true` "
                    f"requires length {self.series_length} "
                    f"({self.series_length_source})."
                )
        self.sequences.append(np.stack(columns, axis=1))

    def _parse_values(self, field, dimension):
        if not field.strip():
            raise _LineError(f"dimension {dimension} has no values.")
        values = []
        for text in field.split(","):
            text = text.strip()
            if text == "?":
                if not self.header.get("missing"):
                    raise _LineError(
                        f"missing value `?` in dimension {dimension}, but the "
                        "header does not declare `@missing true`."
                    )
                values.append(math.nan)
                continue
            try:
                values.append(float(text))
            except ValueError:
                raise _LineError(
                    f"value {text!r} in dimension {dimension} is not a number."
                ) from None
        return np.array(values, dtype="float32")


def _parse_boolean(key, value):
    if value.lower() not in ("true", "false"):
        raise _LineError(
            f"`@{_TAGS[key]}` expects `true` or `false`, got {value!r}."
        )
    return value.lower() == "true"
