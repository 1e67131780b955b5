"""Argument checks shared by the layers, with Keras' wording."""

import math
import numbers


def check_positive_int(name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value <= 0
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer, got {value!r}."
        )


def check_rate(name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 <= value < 1
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"float in [0, 1), got {value!r}."
        )


def check_positive_float(name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 < value < math.inf
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive number, got {value!r}."
        )


def check_non_negative_float(name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0 <= value < math.inf
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"non-negative number, got {value!r}."
        )


def check_finite_float(name: str, value) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
    ):
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"finite number, got {value!r}."
        )


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
