"""`build_classifier`: the article's sequence classifier as a Keras model."""

import keras

from keras_seqrnn.highway_stacked_rnn import HighwayStackedRNN
from keras_seqrnn import validation


def build_classifier(
    num_features: int,
    num_classes: int,
    units: int | list[int] = 64,
    num_layers: int | None = None,
    highway: str | None = "depth",
    mask_value: float = 0.0,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    gate_bias: float = -2.0,
    seed: int | None = None,
    name: str = "seqrnn_classifier",
) -> keras.Model:
    """Builds masking -> `HighwayStackedRNN` -> dense `(V, B)` -> softmax.

    The model takes padded sequences `(batch, time, num_features)`, time of
    any length, and returns class probabilities `(batch, num_classes)`,
    `softmax(V h_T + B)` over the last layer's output at each sequence's last
    real step. Steps whose features all equal `mask_value` are padding.

    Args:
        num_features: Positive integer, features per step, N.
        num_classes: Integer >= 2, the number of classes, K.
        units: Positive integer, or one per layer: the state size L.
            Default: `64`.
        num_layers: Positive integer, the number of stacked layers.
            Default: `len(units)` for a list, else `1`.
        highway: `"depth"`, `"time"`, `"both"` or `None`, as in
            `HighwayStackedRNN`. Default: `"depth"`.
        mask_value: Float, the padding value that `keras.layers.Masking`
            masks out. Default: `0.0`, what `keras_seqrnn.data.pad` pads with.
        dropout: Float in `[0, 1)`, dropout between stacked layers and before
            the output layer. Default: `0.0`.
        recurrent_dropout: Float in `[0, 1)`, variational dropout on the
            recurrent state. Default: `0.0`.
        gate_bias: Float, the initial bias of the highway gates.
            Default: `-2.0`.
        seed: Integer, seed for dropout. Default: `None`.
        name: String, the model's name. Default: `"seqrnn_classifier"`.

    Returns:
        A `keras.Model` with layers named `masking`, `rnn` (the
        `HighwayStackedRNN`), `logits` (the dense layer with kernel V and
        bias B) and `probabilities` (softmax).

    Example:

    ```python
    model = keras_seqrnn.build_classifier(12, 9, units=64, num_layers=2)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, lengths = keras_seqrnn.data.pad(sequences)
    model.fit(x, labels, epochs=10)
    ```
    """
    validation.check_positive_int("num_features", num_features)
    validation.check_positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(
            "Received an invalid value for argument `num_classes`, expected "
            f"an integer >= 2, got {num_classes!r}."
        )
    validation.check_finite_float("mask_value", mask_value)
    inputs = keras.Input((None, num_features), name="sequences")
    x = keras.layers.Masking(mask_value, name="masking")(inputs)
    x = HighwayStackedRNN(
        units,
        num_layers=num_layers,
        highway=highway,
        gate_bias=gate_bias,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        seed=seed,
        name="rnn",
    )(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, outputs, name=name)
