"""Argument checks shared by the layers, with Keras' wording."""

import math
import numbers


def _number(value, kind=numbers.Real) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _reject(name: str, expected: str, value) -> None:
    raise ValueError(
        f"Received an invalid value for argument `{name}`, expected "
        f"{expected}, got {value!r}."
    )


def check_positive_int(name: str, value) -> None:
    if not (_number(value, numbers.Integral) and value > 0):
        _reject(name, "a positive integer", value)


def check_non_negative_int(name: str, value) -> None:
    if not (_number(value, numbers.Integral) and value >= 0):
        _reject(name, "a non-negative integer", value)


def check_rate(name: str, value) -> None:
    if not (_number(value) and 0 <= value < 1):
        _reject(name, "a float in [0, 1)", value)


def check_positive_float(name: str, value) -> None:
    if not (_number(value) and 0 < value < math.inf):
        _reject(name, "a positive number", value)


def check_non_negative_float(name: str, value) -> None:
    if not (_number(value) and 0 <= value < math.inf):
        _reject(name, "a non-negative number", value)


def check_finite_float(name: str, value) -> None:
    if not (_number(value) and math.isfinite(value)):
        _reject(name, "a finite number", value)


def check_sequence_shape(name: str, shape, features: int | None) -> None:
    """Checks a `(batch, time, features)` shape against the built size."""
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` expected inputs of rank 3, (batch, time, features), "
            f"got rank {len(shape)} with shape {shape}."
        )
    if features is not None and shape[-1] is not None and shape[-1] != features:
        raise ValueError(
            f"`{name}` was built for {features} features per step, got "
            f"inputs with {shape[-1]}: shape {shape}."
        )
