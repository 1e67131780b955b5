import keras
import numpy as np
import pytest

import keras_seqrnn
from export import frozen_model


def _classifier(rng, **kwargs):
    model = keras_seqrnn.build_classifier(
        5,
        3,
        units=[6, 4],
        feature_mean=rng.normal(size=5),
        feature_variance=rng.uniform(0.5, 2.0, 5),
        label_names=["a", "b", "c"],
        **kwargs,
    )
    model.build((None, None, 5))
    return model


@pytest.mark.parametrize("bidirectional", [False, True], ids=["forward", "both"])
def test_freeze_reads_every_weight_and_round_trips(rng, tmp_path, bidirectional):
    model = _classifier(rng, highway="both", bidirectional=bidirectional,
                        pooling="last_mean")
    frozen = frozen_model.freeze(model)
    assert frozen.num_features == 5 and frozen.num_classes == 3
    assert frozen.activation == "tanh"
    assert frozen.label_names == ("a", "b", "c")
    assert frozen.pooling == "last_mean"
    assert (frozen.backward_layers is not None) == bidirectional
    stacks = [frozen.layers] + ([frozen.backward_layers] if bidirectional else [])
    for layers, rnn in zip(stacks, model.stacks, strict=True):
        for i, layer in enumerate(layers):
            for got, want in zip(layer, rnn.layer_weights(i)):
                assert (got is None) == (want is None)
                if want is not None:
                    np.testing.assert_array_equal(got, keras.ops.convert_to_numpy(want))
    np.testing.assert_allclose(
        frozen.input_scale, 1 / np.sqrt(model.feature_variance), rtol=1e-6
    )
    frozen.save(tmp_path / "frozen.npz")
    loaded = frozen_model.FrozenModel.load(tmp_path / "frozen.npz")
    assert loaded.label_names == frozen.label_names
    assert loaded.pooling == frozen.pooling
    assert (loaded.backward_layers is None) == (frozen.backward_layers is None)
    for a, b in zip(loaded.layers + (loaded.backward_layers or ()),
                    frozen.layers + (frozen.backward_layers or ()), strict=True):
        for x, y in zip(a, b):
            assert (x is None and y is None) or np.array_equal(x, y)
    np.testing.assert_array_equal(loaded.head_kernel, frozen.head_kernel)
    np.testing.assert_array_equal(loaded.input_shift, frozen.input_shift)


@pytest.mark.parametrize("recurrent", ["stack", "cell"])
def test_freeze_reads_a_sequential_model(recurrent):
    rnn = (
        keras_seqrnn.HighwayStackedRNN(4, num_layers=2)
        if recurrent == "stack"
        else keras.layers.RNN(keras_seqrnn.WeightSharedRNNCell(4))
    )
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Masking(0.0),
            keras.layers.Normalization(mean=[1.0, 2, 3], variance=[4.0, 1, 9]),
            rnn,
            keras.layers.Dropout(0.1),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    frozen = frozen_model.freeze(model)
    assert len(frozen.layers) == (2 if recurrent == "stack" else 1)
    np.testing.assert_allclose(frozen.input_scale, [0.5, 1, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(frozen.input_shift, [-0.5, -2, -1], rtol=1e-6)


def test_unsupported_layers_are_named():
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Masking(0.0),
            keras.layers.LSTM(4, name="my_lstm"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    with pytest.raises(frozen_model.UnsupportedModelError, match="my_lstm \\(LSTM\\)"):
        frozen_model.freeze(model)


def test_models_of_other_kinds_are_refused():
    inputs = keras.Input((None, 3))
    functional = keras.Model(inputs, keras.layers.GRU(2)(inputs), name="gru_net")
    with pytest.raises(frozen_model.UnsupportedModelError, match="Functional 'gru_net'"):
        frozen_model.freeze(functional)
    unmasked = keras.Sequential(
        [keras.Input((None, 3)), keras_seqrnn.HighwayStackedRNN(4),
         keras.layers.Dense(2, activation="softmax")]
    )
    with pytest.raises(frozen_model.UnsupportedModelError, match="Masking"):
        frozen_model.freeze(unmasked)
    logits = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.Masking(),
         keras_seqrnn.HighwayStackedRNN(4), keras.layers.Dense(2)]
    )
    with pytest.raises(frozen_model.UnsupportedModelError, match="softmax"):
        frozen_model.freeze(logits)
    with pytest.raises(frozen_model.UnsupportedModelError, match="not built"):
        frozen_model.freeze(keras_seqrnn.SequenceClassifier(3, 2))
