import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from tensorflow_model_optimization.python.core.quantization.keras import (
    quant_ops,
)
from tensorflow_model_optimization.quantization.keras import quantizers

import export
import keras_seqrnn
from keras_seqrnn import classifier_forward
from keras_seqrnn import data
from keras_seqrnn import recurrence
from keras_seqrnn.quantization_aware_classifier import TfmotQuantizer
from tests import export_fixtures


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(5)
    return export_fixtures.trained_classifier(units=12)


@pytest.fixture(scope="module")
def fine_tuned(trained):
    model, (x_train, y_train), _ = trained
    padded, _ = data.pad(x_train)
    qat = export.quantize_aware(model, calibration_data=padded)
    before = qat.quantization_ranges()
    qat.compile(keras.optimizers.Adam(3e-4), metrics=["accuracy"], clip_norm=1.0)
    qat.fit(padded, y_train, batch_size=32, epochs=2, verbose=0)
    return qat, before


def test_adapter_matches_tfmot_and_learns_ranges(rng):
    layer = keras.layers.Layer()
    quantizer = TfmotQuantizer(
        quantizers.MovingAverageQuantizer(8, False, False, False),
        layer, "block/act", (4, 3),
    )
    assert {v.name for v in layer.weights} == {"block_act_min", "block_act_max"}
    assert quantizer.range == (-6.0, 6.0, False)
    x = tf.constant(rng.normal(size=(4, 3)) * 2, tf.float32)
    expected = quant_ops.MovingAvgQuantize(
        x, tf.Variable(-6.0), tf.Variable(6.0), is_training=False,
        num_bits=8, narrow_range=False,
    )
    np.testing.assert_array_equal(quantizer(x, training=False), expected)
    for _ in range(50):
        quantizer(x, training=True)
    low, high, _ = quantizer.range
    # Moving averages (decay 0.999) move from [-6, 6] towards x's range.
    assert -6.0 < low < 0 < high < 6.0
    assert np.all(np.abs(quantizer(x, training=False) - x) <= (high - low) / 255)

    weights = TfmotQuantizer(
        quantizers.LastValueQuantizer(8, False, True, True), layer, "k", (3, 3)
    )
    kernel = tf.constant(rng.normal(size=(3, 3)), tf.float32)
    weights(kernel, training=True)
    low, high, narrow = weights.range
    assert narrow and high == pytest.approx(np.abs(kernel).max()) and low == -high


@settings(max_examples=10, deadline=None)
@given(lengths=st.lists(st.integers(0, 8), min_size=1, max_size=4), seed=st.integers(0, 999))
def test_selecting_forward_equals_the_masked_layers(trained, lengths, seed):
    """The export's forward pass on zero padding and lengths equals the
    Keras model on NaN padding, with zero steps inside the sequences."""
    model = trained[0]
    rng = np.random.default_rng(seed)
    sequences = [rng.normal(size=(n, 12)).astype(np.float32) for n in lengths]
    for sequence in sequences:
        sequence[rng.random(len(sequence)) < 0.3] = 0.0
    padded, n = data.pad(sequences, max_length=8, value=0.0)
    forward, backward = (
        [recurrence.fuse_weights(rnn.layer_weights(i)) for i in range(2)]
        for rnn in model.stacks
    )
    std = model.standardization
    scale = 1 / np.maximum(np.sqrt(np.ravel(std.variance)), keras.config.epsilon())
    logits = classifier_forward.classifier_logits(
        tf.constant(padded), tf.constant(n, tf.int32), forward,
        model.rnn.activation, model.head.kernel.value, model.head.bias.value,
        scale.astype(np.float32), (-np.ravel(std.mean) * scale).astype(np.float32),
        backward_weights=backward, pooling=model.pooling,
    )
    nan_padded, _ = data.pad(sequences, max_length=8)
    np.testing.assert_allclose(
        logits, model.compute_logits(nan_padded), atol=1e-5
    )


def test_quantize_aware_copies_the_model_and_fakes_int8(trained, rng):
    model, _, (x_test, _) = trained
    padded, _ = data.pad(x_test[:40])
    qat = export.quantize_aware(model, calibration_data=padded)
    assert isinstance(qat, keras_seqrnn.QuantizationAwareClassifier)
    assert qat.bidirectional and qat.pooling == "last_mean"
    for layer in ("rnn", "backward_rnn", "head", "standardization"):
        for a, b in zip(getattr(qat, layer).weights, getattr(model, layer).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    ranges = qat.quantization_ranges()
    assert {"sequences", "layer0/input_kernel", "layer1/recurrent_kernel",
            "layer0/candidate", "layer1/y", "pick", "output", "valid",
            "reciprocal", "mean", "backward/layer0/input_kernel",
            "backward/layer1/y_masked", "backward/sum", "backward/mean",
            "features", "logits"} <= set(ranges)
    assert ranges["valid"] == ranges["pick"] == (0.0, 1.0, False)
    # Calibrated ranges: the fake quantization rounds, but stays close.
    np.testing.assert_allclose(qat.predict_on_batch(padded), model.predict_on_batch(padded), atol=0.2)


def test_fine_tuning_learns_ranges_and_keeps_accuracy(trained, fine_tuned):
    model, _, (x_test, y_test) = trained
    qat, before = fine_tuned
    after = qat.quantization_ranges()
    learned = [n for n in after if not n.endswith("kernel") and after[n] != (0.0, 255 / 256, False)]
    assert any(after[n][:2] != before[n][:2] for n in learned)
    padded, _ = data.pad(x_test)
    float_accuracy = np.mean(model.predict_on_batch(padded).argmax(1) == y_test)
    qat_accuracy = np.mean(qat.predict_on_batch(padded).argmax(1) == y_test)
    assert qat_accuracy >= float_accuracy - 0.05


def test_saves_loads_and_round_trips_its_config(fine_tuned, tmp_path, rng):
    qat, _ = fine_tuned
    config = qat.get_config()
    clone = keras_seqrnn.QuantizationAwareClassifier.from_config(config)
    assert clone.get_config() == config
    qat.save(tmp_path / "qat.keras")
    loaded = keras.saving.load_model(tmp_path / "qat.keras")
    assert isinstance(loaded, keras_seqrnn.QuantizationAwareClassifier)
    assert loaded.quantization_ranges() == qat.quantization_ranges()
    sequences = export_fixtures.random_sequences(rng, 6)
    padded, _ = data.pad(sequences)
    np.testing.assert_allclose(loaded.predict_on_batch(padded), qat.predict_on_batch(padded), atol=1e-6)


def test_qat_export_uses_the_learned_ranges(fine_tuned, trained, tmp_path):
    qat, _ = fine_tuned
    _, _, (x_test, y_test) = trained
    report = export.to_tflite(
        qat, tmp_path / "qat.tflite", "mobile", "int8", max_length=29,
        verification_data=(x_test, y_test),
    )
    # A briefly trained 12-unit model has near ties; the default model
    # agrees on 99.7 % or more (see the README).
    assert report.agreement >= 0.97
    assert abs(report.accuracy - report.keras_accuracy) <= 0.02
    types = report.tensor_types
    assert types["int8"] > 20 * types.get("float32", 0)
    assert "WHILE" not in report.ops and not any(o.startswith("Flex") for o in report.ops)
    # One range per tensor for all steps: int32 biases are stored once, not
    # once per step as after calibration.
    model, (x_train, _), _ = trained
    calibrated = export.to_tflite(
        model, tmp_path / "ptq.tflite", "mobile-int8", max_length=29,
        representative_data=x_train,
    )
    qat_biases = report.weights_by_type["int32"]
    assert qat_biases < calibrated.weights_by_type["int32"] / 3


def test_bad_input(trained, fine_tuned, tmp_path):
    model, _, _ = trained
    qat, _ = fine_tuned
    with pytest.raises(TypeError, match="already quantization-aware"):
        export.quantize_aware(qat)
    inputs = keras.Input((None, 12))
    other = keras.Model(inputs, keras.layers.GRU(2)(inputs))
    with pytest.raises(TypeError, match="takes a trained keras_seqrnn.SequenceClassifier"):
        export.quantize_aware(other)
    with pytest.raises(ValueError, match="exports only with target='mobile', quantization='int8'"):
        export.to_tflite(qat, tmp_path / "q.tflite", "cpu-float16")
    assert list(tmp_path.iterdir()) == []


def test_importing_the_package_loads_neither_tfmot_nor_keras_2():
    script = (
        "import sys, keras_seqrnn, export\n"
        "print(sorted(m for m in ('tensorflow_model_optimization', 'tf_keras')"
        " if m in sys.modules))\n"
    )
    # A fresh process's environment: this one's TensorFlow has set
    # variables (TF2_BEHAVIOR, ...) under which its loader imports tf_keras.
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    completed = subprocess.run([sys.executable, "-c", script], env=env,
                               capture_output=True, text=True, check=True)
    assert completed.stdout.strip().splitlines()[-1] == "[]"
