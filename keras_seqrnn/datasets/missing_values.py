"""Missing values inside a series: reject them, or fill them in."""

import numpy as np

MISSING_POLICIES = ("error", "interpolate", "ffill")


class MissingValueError(ValueError):
    """A missing value that cannot be filled; the message names the step
    and the dimension (1-based)."""


def check_policy(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ValueError(
            "Received an invalid value for argument `missing`, expected one "
            f"of {MISSING_POLICIES}, got {missing!r}."
        )


def fill_missing(sequence: np.ndarray, missing: str = "error") -> np.ndarray:
    """Fills the NaN values of one `(length, dimensions)` series.

    Args:
        sequence: float array `(length, dimensions)`, NaN where a value is
            missing.
        missing: `"error"` (raise on the first NaN), `"interpolate"`
            (linear interpolation between the nearest known values of the
            same dimension; before the first or after the last known value,
            that value) or `"ffill"` (the last known value carried forward;
            before the first known value, that value). Default: `"error"`.

    Returns:
        A float32 array without NaN.

    Raises:
        MissingValueError: under `"error"`, or where a dimension has no
            known value at all.

    Example:

    >>> fill_missing(np.array([[1.0], [np.nan], [3.0]]), "interpolate")[:, 0]
    array([1., 2., 3.], dtype=float32)
    """
    check_policy(missing)
    sequence = np.array(sequence, np.float32)
    gaps = np.isnan(sequence)
    if not gaps.any():
        return sequence
    if missing == "error":
        step, dimension = np.argwhere(gaps)[0]
        raise MissingValueError(
            f"step {step + 1}, dimension {dimension + 1} is missing; choose "
            "a missing-value policy: 'interpolate' or 'ffill'."
        )
    steps = np.arange(len(sequence))
    for dimension in np.flatnonzero(gaps.any(axis=0)):
        column = sequence[:, dimension]
        known = np.flatnonzero(~gaps[:, dimension])
        if not known.size:
            raise MissingValueError(
                f"dimension {dimension + 1} has no value at all, nothing to "
                "fill it from."
            )
        if missing == "interpolate":
            column[:] = np.interp(steps, known, column[known])
        else:
            # The index of the last known value at or before each step (the
            # first known value before it).
            last = np.maximum.accumulate(np.where(gaps[:, dimension], 0, steps))
            last = np.where(steps < known[0], known[0], last)
            column[:] = column[last]
    return sequence
