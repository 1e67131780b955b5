import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import export
import keras_seqrnn
from export import litert_model
from export import model_file
from export import tflite_export
from tests import export_fixtures

MAX_LENGTH = export_fixtures.MAX_LENGTH
CASES = [
    ("cpu", None),
    ("cpu", "float16"),
    ("cpu", "dynamic"),
    ("gpu", None),
    ("mobile", "int8"),
    ("mobile", "float16"),
]


@pytest.fixture(scope="module")
def trained():
    """Reads 3 steps at a time, so the frame front end goes through every
    target (a model without frames does in test_cli's export of every
    preset)."""
    keras.utils.set_random_seed(3)
    return export_fixtures.trained_classifier(highway=None, frame_length=3)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """Every target and quantization, exported once, with its report."""
    model, (x_train, _), (x_test, y_test) = trained
    folder = tmp_path_factory.mktemp("exported")
    reports = {}
    for target, quantization in CASES:
        path = folder / f"{target}-{quantization}.tflite"
        reports[target, quantization] = export.to_tflite(
            model,
            path,
            target,
            quantization,
            representative_data=x_train,
            max_length=None if target == "cpu" else MAX_LENGTH,
            verification_data=(x_test, y_test),
        )
    return reports


@pytest.mark.parametrize("target, quantization", CASES)
def test_every_target_converts_runs_and_matches_keras(
    trained, exported, target, quantization, rng
):
    model, _, (x_test, _) = trained
    report = exported[target, quantization]
    assert report.passed, report.failures
    assert report.path.exists() and report.path.stat().st_size == report.size
    assert not any(op.startswith("Flex") for op in report.ops)
    assert ("WHILE" in report.ops) == (target == "cpu")
    assert model_file.describe(report.path.read_bytes()).misaligned_buffers == 0
    assert report.num_sequences == len(x_test)
    # Fresh random sequences, run here on the LiteRT CPU runtime: lengths
    # that end inside a frame, zero steps inside the sequences. int8 gets
    # them from the data's distribution (its calibrated ranges).
    if quantization == "int8":
        sequences = export_fixtures.jittered_sequences(rng, x_test, 40)
    else:
        sequences = export_fixtures.random_sequences(rng, 20)
    for sequence in sequences:
        sequence[rng.random(len(sequence)) < 0.2] = 0.0
    padded, lengths = litert_model.prepare_sequences(sequences, None, 12)
    steps = np.arange(padded.shape[1])[None, :, None]
    expected = np.asarray(
        model(np.where(steps < lengths[:, None, None], padded, np.nan))
    )
    got = export.LiteRTModel(report.path).predict(sequences)
    if quantization is None:
        assert report.max_abs_diff < 1e-4
        np.testing.assert_allclose(got, expected, atol=1e-4)
    elif quantization in ("float16", "dynamic"):
        assert report.agreement >= 0.995
        np.testing.assert_allclose(got, expected, atol=0.1)
    else:
        assert report.agreement >= tflite_export.MIN_INT8_AGREEMENT
        assert report.accuracy >= report.keras_accuracy - 0.015
        assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9
        np.testing.assert_allclose(got, expected, atol=0.1)


def test_quantization_aware_model_with_frames_exports_to_int8(
    trained, tmp_path
):
    model, (x_train, y_train), (x_test, y_test) = trained
    padded, _ = keras_seqrnn.data.pad(x_train)
    qat = export.quantize_aware(model, calibration_data=padded)
    qat.compile(keras.optimizers.Adam(1e-4), clip_norm=1.0)
    qat.fit(padded, y_train, batch_size=32, epochs=1, verbose=0)
    report = export.to_tflite(
        qat, tmp_path / "qat.tflite", "mobile-int8",
        verification_data=(x_test, y_test), max_length=MAX_LENGTH,
    )
    assert report.passed, report.failures
    assert report.agreement >= 0.95
    assert report.accuracy >= report.keras_accuracy - 0.015


def test_gpu_model_is_fully_accelerated_on_the_litert_gpu(exported):
    gpu = exported["gpu", None].gpu
    if "error" in gpu:
        pytest.fail(f"LiteRT GPU accelerator unavailable: {gpu['error']}")
    assert gpu["fully_accelerated"]
    assert gpu["agreement"] >= 0.99
    assert gpu["max_abs_diff"] < 2e-2  # float16 arithmetic


def test_int8_model_is_integer_inside(exported):
    report = exported["mobile", "int8"]
    types = report.tensor_types
    assert types["int8"] > 10 * types.get("float32", 0)
    # Float only at the edges: sequences, probabilities, the casts of the
    # three 0/1 tensors computed from the int32 lengths (one marks the
    # steps of the last frame), and the length as a float, at least 1 (a
    # constant 1 and two (batch,) tensors) for the mean.
    assert types.get("float32", 0) <= 8
    assert set(report.weights_by_type) == {"int8", "int32", "float32"}
    assert report.weights_by_type["float32"] == 4  # the constant 1
    assert "DEQUANTIZE" in report.ops and "QUANTIZE" in report.ops


def test_quantized_files_are_smaller(exported):
    # (Dynamic range quantizes only tensors of 1024 elements or more: none
    # at 16 units; benchmarks/export_latency.py measures the 64-unit model.)
    weights = {k: r.bytes_by_part["weights"] for k, r in exported.items()}
    assert weights["cpu", "float16"] < 0.6 * weights["cpu", None]
    assert weights["mobile", "float16"] < 0.6 * weights["gpu", None]
    # int8 kernels are 4x smaller (beside them, a few int8 constants such
    # as the backward stack's zero states); int32 biases are stored once
    # per unrolled step's input scale, so the total shrinks less.
    int8 = exported["mobile", "int8"].weights_by_type["int8"]
    assert int8 <= 0.3 * exported["gpu", None].weights_by_type["float32"]
    assert weights["mobile", "int8"] < weights["gpu", None]
    assert exported["cpu", None].size < exported["gpu", None].size


def test_int8_io_model_takes_and_returns_int8(trained, tmp_path, rng):
    model, (x_train, _), (x_test, _) = trained
    path = tmp_path / "io.tflite"
    report = export.to_tflite(
        model, path, "mobile-int8", representative_data=x_train[:64],
        max_length=MAX_LENGTH, io_type="int8",
    )
    assert report.passed and report.tensor_types["int8"] > 0
    # Float only for what is computed from the int32 lengths: the three 0/1
    # tensors and the length as a float, at least 1 (see above).
    assert report.tensor_types.get("float32", 0) <= 6
    runner = export.LiteRTModel(path)
    # The runner quantizes the inputs and dequantizes the probabilities.
    sequences = export_fixtures.jittered_sequences(rng, x_test, 40)
    expected = np.asarray(model(keras_seqrnn.data.pad(sequences)[0]))
    got = runner.predict(sequences)
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= 0.9
    np.testing.assert_allclose(got, expected, atol=0.1)


def test_presets_and_configs_are_accepted(trained, tmp_path):
    model, _, _ = trained
    config = export.ExportConfig.preset("cpu-dynamic")
    report = export.to_tflite(model, tmp_path / "a.tflite", config)
    assert report.config is config
    report = export.to_tflite(model, tmp_path / "b.tflite", "cpu-float16")
    assert report.config.quantization == "float16"
    assert report.accuracy is None and report.num_sequences == 256
    assert "verification        passed" in report.table()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"target": "gpu"}, ValueError, "give max_length"),
        ({"target": "mobile", "quantization": "int8", "max_length": 29},
         ValueError, "needs representative_data"),
        ({"target": "cpu", "quantization": "int4"}, ValueError, "does not take"),
        ({"target": "tpu"}, ValueError, "Unknown target 'tpu'"),
        ({"target": export.ExportConfig(), "quantization": "float16"},
         ValueError, "not both"),
        ({"target": "cpu", "threads": 4}, TypeError, "threads"),
        ({"target": "gpu", "max_length": 5,
          "verification_data": [np.ones((6, 12))]},
         ValueError, "more than this model's max_length 5"),
    ],
)
def test_bad_options_fail_before_any_work(trained, tmp_path, kwargs, error, message):
    model, _, _ = trained
    with pytest.raises(error, match=message):
        export.to_tflite(model, tmp_path / "m.tflite", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_foreign_models_are_refused(trained, tmp_path):
    model, _, _ = trained
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export.to_tflite(model, tmp_path / "nope" / "m.tflite")
    inputs = keras.Input((None, 12))
    lstm = keras.Model(inputs, keras.layers.LSTM(3)(inputs))
    with pytest.raises(export.UnsupportedModelError, match="Functional"):
        export.to_tflite(lstm, tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []


def test_a_crashing_runtime_becomes_an_error_and_writes_nothing(
    trained, tmp_path, monkeypatch
):
    # The child process imports sitecustomize from PYTHONPATH: this one makes
    # the LiteRT interpreter abort the process, as the int16x8 kernels do.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import os\n"
        "from ai_edge_litert import interpreter\n"
        "def _abort(*args, **kwargs):\n"
        "    os.abort()\n"
        "interpreter.Interpreter.__init__ = _abort\n"
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(hooks), *sys.path])
    )
    model, _, _ = trained
    target = tmp_path / "m.tflite"
    target.write_bytes(b"previous model")
    with pytest.raises(export.ExportError, match="SIGABRT while running the model on the LiteRT CPU"):
        export.to_tflite(model, target)
    assert target.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hooks", "m.tflite"]


def test_an_export_module_in_the_working_folder_changes_nothing(
    trained, tmp_path, monkeypatch
):
    (tmp_path / "export.py").write_text("raise ImportError('the wrong export')\n")
    monkeypatch.chdir(tmp_path)
    model, _, (x_test, _) = trained
    report = export.to_tflite(model, tmp_path / "m.tflite", verification_data=x_test[:8])
    assert report.passed and (tmp_path / "m.tflite").is_file()


def test_a_child_out_of_time_is_stopped_and_writes_nothing(trained, tmp_path):
    model, _, (x_test, _) = trained
    with pytest.raises(export.ExportError, match="after 0.5 s and was stopped"):
        export.to_tflite(model, tmp_path / "m.tflite", timeout=0.5,
                         verification_data=x_test[:8])
    assert list(tmp_path.iterdir()) == []


def test_non_finite_weights_fail_before_conversion(trained, tmp_path):
    model, _, (x_test, _) = trained
    broken = keras.models.clone_model(model)
    weights = model.get_weights()
    kernel = next(i for i, w in enumerate(weights) if w.ndim == 2)
    weights[kernel] = weights[kernel].copy()
    weights[kernel][0, 0] = np.nan
    broken.set_weights(weights)
    with pytest.raises(export.ExportError, match="weights hold NaN or infinity \\(.*layer0/kernel"):
        export.to_tflite(broken, tmp_path / "m.tflite", verification_data=x_test[:8])
    assert list(tmp_path.iterdir()) == []


def test_non_finite_verification_data_is_refused(trained, tmp_path):
    model, _, (x_test, _) = trained
    sequences = [s.copy() for s in x_test[:8]]
    sequences[3][1, 2] = np.inf
    with pytest.raises(ValueError, match="Sequence 3 has a NaN or infinite value"):
        export.to_tflite(model, tmp_path / "m.tflite", verification_data=sequences)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "target, quantization, probabilities, accuracy, failure",
    [
        ("cpu", None, [[np.nan, 0.5]], None, "exported model's probabilities hold NaN"),
        ("cpu", "float16", [[0.9, np.inf]], None, "exported model's probabilities hold NaN"),
        ("mobile", "int8", [[0.9, 0.1], [0.6, 0.4]], None, "top-1 agreement 50.00% < 95.0%"),
        ("mobile", "int8", [[0.9, 0.1], [0.1, 0.9]], (0.5, 0.52),
         "int8 accuracy 50.00% is more than 1.5 points below Keras' 52.00%"),
    ],
    ids=["nan", "inf", "int8_agreement", "int8_accuracy"],
)
def test_verification_fails_on_non_finite_outputs_and_int8_loss(
    target, quantization, probabilities, accuracy, failure
):
    config = export.ExportConfig(
        target=target, quantization=quantization,
        max_length=None if target == "cpu" else 4,
    )
    reference = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)[: len(probabilities)]
    failures = tflite_export._failures(
        config, np.array(probabilities, np.float32), reference, None,
        *(accuracy or (None, None)),
    )
    assert any(failure in f for f in failures), failures
    assert tflite_export._failures(
        config, reference, reference, None, 0.52, 0.52
    ) == ()


def test_gpu_runner_refuses_a_process_with_tensorflow(exported):
    with pytest.raises(RuntimeError, match="has not imported TensorFlow"):
        export.LiteRTModel(exported["gpu", None].path, accelerator="gpu")


def test_gpu_runner_predicts_in_a_process_without_tensorflow(exported, trained):
    _, _, (x_test, y_test) = trained
    path = exported["gpu", None].path
    script = (
        "import sys, numpy as np, export\n"
        f"m = export.LiteRTModel({str(path)!r}, accelerator='gpu')\n"
        "assert 'tensorflow' not in sys.modules\n"
        "x = np.load(sys.argv[1], allow_pickle=True)\n"
        "p = m.predict(list(x))\n"
        "print('RESULT', m.fully_accelerated, *p.argmax(1))\n"
    )
    data = pathlib.Path(path).with_suffix(".npy")
    np.save(data, np.array(x_test[:20], dtype=object), allow_pickle=True)
    completed = subprocess.run(
        [sys.executable, "-c", script, str(data)],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    words = completed.stdout[completed.stdout.index("RESULT"):].split()[1:]
    assert words[0] == "True"
    expected = export.LiteRTModel(path).predict(x_test[:20]).argmax(1)
    assert np.mean(np.array(words[1:], int) == expected) >= 0.95
