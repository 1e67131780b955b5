"""The checks every layer must pass, in the spirit of keras-rs' TestCase."""

import copy

import keras
import numpy as np


def assert_layer_contract(
    make_layer, inputs, expected_output_shape, tmp_path, atol=1e-6
):
    """Builds, calls, serializes, saves and fits a layer; checks the outputs.

    Args:
        make_layer: a function returning a new, unbuilt layer.
        inputs: a NumPy batch for the layer.
        expected_output_shape: the output shape, or a list of shapes.
        tmp_path: a folder for the `.keras` file.
        atol: tolerance for equal outputs.

    Returns:
        The layer that was called eagerly.
    """
    if not isinstance(expected_output_shape, list):
        expected_output_shape = [expected_output_shape]
    layer = make_layer()
    eager = _as_list(layer(inputs))
    assert [tuple(o.shape) for o in eager] == expected_output_shape

    symbolic_inputs = keras.Input(batch_shape=inputs.shape)
    symbolic = _as_list(make_layer()(symbolic_inputs))
    assert [tuple(o.shape) for o in symbolic] == expected_output_shape

    config = layer.get_config()
    assert type(layer).from_config(copy.deepcopy(config)).get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert revived.get_config() == config

    model_inputs = keras.Input(inputs.shape[1:])
    outputs = make_layer()(model_inputs)
    model = keras.Model(model_inputs, outputs)
    path = tmp_path / "layer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for got, want in zip(
        _as_list(loaded.predict(inputs, verbose=0)),
        _as_list(model.predict(inputs, verbose=0)),
    ):
        np.testing.assert_allclose(got, want, atol=atol)

    targets = [np.zeros_like(np.asarray(o)) for o in _as_list(model(inputs))]
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=True)
    model.fit(inputs, targets, epochs=1, verbose=0)
    changed = [
        not np.allclose(b, w.numpy())
        for b, w in zip(before, model.trainable_weights)
    ]
    assert all(changed), "every trainable weight gets a gradient"
    return layer


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]
