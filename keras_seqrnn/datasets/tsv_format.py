"""Reader for the `.tsv` files of the UCR 2018 time series archive."""

import math
import os

import numpy as np

from keras_seqrnn.datasets import missing_values
from keras_seqrnn.datasets.sequence_dataset import NUMBER
from keras_seqrnn.datasets.sequence_dataset import DataFormatError
from keras_seqrnn.datasets.sequence_dataset import LineError
from keras_seqrnn.datasets.sequence_dataset import SequenceDataset
from keras_seqrnn.datasets.sequence_dataset import decode_line
from keras_seqrnn.datasets.sequence_dataset import float32_values
from keras_seqrnn.datasets.sequence_dataset import ordered_labels


class TsvFormatError(DataFormatError):
    """A malformed `.tsv` file; the message names the file and the line."""


def load_tsv(path: str | os.PathLike, missing: str = "error") -> SequenceDataset:
    """Loads a univariate classification data set from a UCR `.tsv` file.

    The UCR 2018 archive writes one series a line: the class label, then
    the values, separated by tabs. Series of unequal lengths are padded with
    `NaN` at the end to the longest one: the trailing `NaN`s are padding, and
    a series ends at its last number. A `NaN` before that is a missing
    value, rejected or filled by the `missing` policy.

    Args:
        path: Path of the `.tsv` file (UTF-8; a byte-order mark is allowed).
        missing: What to do with a missing value inside a series: `"error"`
            (a `TsvFormatError` naming the line and the step),
            `"interpolate"` or `"ffill"` (see
            `keras_seqrnn.datasets.fill_missing`). Default: `"error"`.

    Returns:
        A `SequenceDataset` of `(length, 1)` float32 series; numeric labels
        are ordered as numbers, others sorted.

    Raises:
        FileNotFoundError: If `path` does not exist.
        TsvFormatError: If the file is malformed: a value that is not a
            number, a series with no value, rows of different numbers of
            columns that are not `NaN`-padded, an empty file, or a missing
            value under `missing="error"`.

    Example:

    >>> dataset = load_tsv("Chinatown_TRAIN.tsv")  # doctest: +SKIP
    >>> dataset.sequences[0].shape, dataset.label_names  # doctest: +SKIP
    ((24, 1), ('1', '2'))
    """
    missing_values.check_policy(missing)
    path = os.fspath(path)
    sequences, labels, columns = [], [], None
    line_number = 0
    try:
        with open(path, "rb") as file:
            for line_number, raw in enumerate(file, start=1):
                line = decode_line(raw, line_number)
                if not line.strip():
                    continue
                label, values, width = _parse_line(line)
                if columns is None:
                    columns = (width, line_number)
                elif width != columns[0]:
                    raise LineError(
                        f"the line has {width} values, line {columns[1]} has "
                        f"{columns[0]}; the archive pads shorter series with "
                        "NaN to the longest one."
                    )
                try:
                    sequence = missing_values.fill_missing(values, missing)
                except missing_values.MissingValueError as error:
                    raise LineError(
                        f"series {len(sequences) + 1}: {error}"
                    ) from None
                sequences.append(sequence)
                labels.append(label)
    except LineError as error:
        raise TsvFormatError(f"{path}, line {line_number}: {error}") from None
    if not sequences:
        raise TsvFormatError(f"{path}: the file holds no series.")
    label_names = ordered_labels(sorted(set(labels)))
    index = {name: i for i, name in enumerate(label_names)}
    return SequenceDataset(
        sequences=sequences,
        labels=np.array([index[label] for label in labels], np.int32),
        label_names=label_names,
        problem_name=None,
    )


def _parse_line(line):
    """`(label, (length, 1) values with NaN for missing ones, number of
    value columns)`; the trailing NaN padding is cut off."""
    label, *fields = line.rstrip("\r\n").split("\t")
    label = label.strip()
    if not label:
        raise LineError("the line has no class label in its first column.")
    if not fields:
        raise LineError(
            "the line has one column; expected the label, then the values, "
            "separated by tabs."
        )
    values = []
    for column, text in enumerate(fields, start=2):
        text = text.strip()
        if text.lower() == "nan":
            values.append(math.nan)
        elif NUMBER.fullmatch(text):
            values.append(float(text))
        else:
            raise LineError(f"value {text!r} in column {column} is not a number.")
    values = float32_values(values, "the series")
    known = np.flatnonzero(~np.isnan(values))
    if not known.size:
        raise LineError("the series has no value (all NaN).")
    return label, values[: known[-1] + 1, None], len(values)
