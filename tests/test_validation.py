import numpy as np
import pytest

from keras_seqrnn import validation


@pytest.mark.parametrize(
    "value", [1, 7, np.int64(3)], ids=["one", "seven", "numpy"]
)
def test_positive_int_accepts(value):
    validation.check_positive_int("units", value)


@pytest.mark.parametrize(
    "value", [0, -1, 2.0, True, "4", None],
    ids=["zero", "negative", "float", "bool", "str", "none"],
)
def test_positive_int_rejects(value):
    with pytest.raises(ValueError, match=f"`units`.*got {value!r}"):
        validation.check_positive_int("units", value)


@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan"), "0.5"],
                         ids=["negative", "one", "nan", "str"])
def test_rate_rejects(value):
    with pytest.raises(ValueError, match=r"`dropout`, expected a float in \[0, 1\)"):
        validation.check_rate("dropout", value)


def test_finite_float():
    validation.check_finite_float("gate_bias", -2)
    for value in (float("inf"), float("nan"), None):
        with pytest.raises(ValueError, match="`gate_bias`.*finite"):
            validation.check_finite_float("gate_bias", value)


def test_sequence_shape():
    validation.check_sequence_shape("rnn", (None, None, 3), 3)
    with pytest.raises(ValueError, match=r"rank 3.*got rank 4"):
        validation.check_sequence_shape("rnn", (1, 2, 3, 4), None)
    with pytest.raises(ValueError, match="built for 3 features.*with 5"):
        validation.check_sequence_shape("rnn", (1, 2, 5), 3)
