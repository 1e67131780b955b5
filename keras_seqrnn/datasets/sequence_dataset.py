"""`SequenceDataset`, what the readers return, and their error type."""

import re
from typing import NamedTuple

import numpy as np

# A number as the archive writes it: no `nan`, `inf` or `1_000`, which
# Python's `float` would also accept.
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class DataFormatError(ValueError):
    """A data file that cannot be read.

    The message starts with the file path and, where there is one, the
    1-based line number of the problem.
    """


class SequenceDataset(NamedTuple):
    """Labelled (or unlabelled) sequences read from a file.

    Attributes:
        sequences: List of float32 arrays of shape `(length, dimensions)`,
            one per case, finite (missing values filled or rejected by the
            reader's `missing` policy).
        labels: int32 array of indices into `label_names`, one per case, or
            `None` for a file without labels.
        label_names: The class labels, as written in the file: in numeric
            order where every label is a number (`-1` before `1`, `9`
            before `10`), else in the order the file declares them (`.ts`)
            or sorted (`.tsv`). Empty when the file has no labels.
        problem_name: The data set's name (`@problemName` of a `.ts`
            file), or `None`.
    """

    sequences: list[np.ndarray]
    labels: np.ndarray | None
    label_names: tuple[str, ...]
    problem_name: str | None


def ordered_labels(names) -> tuple[str, ...]:
    """Class labels in numeric order where all are numbers, else as given.

    Args:
        names: distinct label strings.

    Returns:
        The labels sorted by value when every one is a number (`"-1"`,
        `"1"`; `"2"`, `"10"`), else in the given order.
    """
    names = tuple(names)
    if names and all(NUMBER.fullmatch(name) for name in names):
        return tuple(sorted(names, key=float))
    return names


def float32_values(values, where: str) -> np.ndarray:
    """Python floats (NaN for missing) as float32.

    Raises:
        LineError: where a value is too large for float32; `where` says
            which part of the line it is in.
    """
    values = np.array(values, np.float64)
    if (np.abs(values) > np.finfo(np.float32).max).any():
        raise LineError(f"a value in {where} is too large for float32.")
    return values.astype(np.float32)


class LineError(Exception):
    """A problem on the line a reader is at; the reader adds the file and
    line number and raises its own `DataFormatError`."""


def decode_line(raw: bytes, line_number: int) -> str:
    """A line of a file read in binary mode, as UTF-8 text; a byte-order
    mark may start the first line.

    Raises:
        LineError: on bytes that are not UTF-8.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LineError(
            f"not UTF-8 text (byte {error.start + 1} of the line)."
        ) from None
    return text.removeprefix("\ufeff") if line_number == 1 else text
