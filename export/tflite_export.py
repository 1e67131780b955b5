"""`to_tflite`: a trained classifier to a verified, builtin-only TFLite file."""

import logging
import os
import pathlib
import tempfile

import keras
import numpy as np

from export import child_process
from export import frozen_model as frozen_lib
from export import litert_model
from export import model_file
from export.child_process import ExportError
from export.export_config import PRESETS
from export.export_config import TARGETS
from export.export_config import ExportConfig
from export.export_report import ExportReport
from keras_seqrnn import atomic
from keras_seqrnn.version import __version__

logger = logging.getLogger(__name__)

FLOAT32_TOLERANCE = 1e-4
# A float32 stream against Keras' whole-sequence model.
STREAM_FLOAT32_TOLERANCE = 1e-5
# An int8 stream against the float stream, at every chunk of a long stream.
MIN_STREAM_DRIFT_AGREEMENT = 0.95
MIN_AGREEMENT = 0.995
MIN_INT8_AGREEMENT = 0.95
# int8 may lose at most this much of the Keras model's accuracy.
MAX_INT8_ACCURACY_DROP = 0.015
# Sequences verified when none are given: random, in the training data's
# units (the inverse of the stored standardization).
_SYNTHETIC_SEQUENCES = 256
_SYNTHETIC_MAX_LENGTH = 32
_MAX_REPRESENTATIVE = 512


def to_tflite(
    model: keras.Model,
    path: str | os.PathLike,
    target: str | ExportConfig = "cpu",
    quantization: str | None = None,
    representative_data=None,
    max_length: int | None = None,
    batch_size: int | None = None,
    *,
    io_type: str | None = None,
    stream: int | None = None,
    verification_data=None,
    latency_runs: int = 0,
    seed: int = 0,
    timeout: float = child_process.DEFAULT_TIMEOUT,
) -> ExportReport:
    """Exports a trained classifier to TFLite and verifies it on LiteRT.

    The graph holds builtin TFLite ops only, built from the layers' own step
    math on the trained weights, with the input standardization inside.
    Conversion and every LiteRT run happen in a child process, so a runtime
    crash is an `ExportError`. The converted model is run on LiteRT's CPU
    runtime (and, for `target="gpu"`, on the LiteRT GPU accelerator) and
    compared with the Keras model; the file is written, atomically, only if
    the comparison passes.

    Args:
        model: a trained `keras_seqrnn.SequenceClassifier` (or the
            `QuantizationAwareClassifier` of `export.quantize_aware`, which
            exports only as int8), or a
            `keras.Sequential` of `Masking`, optional `Normalization`, a
            `HighwayStackedRNN` or `RNN(WeightSharedRNNCell)`, and a softmax
            `Dense` (see `frozen_model.freeze`).
        path: the `.tflite` file to write; its folder must exist.
        target: `"cpu"`, `"gpu"`, `"mobile"`, a preset name from
            `export.PRESETS` (such as `"mobile-int8"`), or an `ExportConfig`
            (then leave `quantization`, `max_length`, `batch_size` and
            `io_type` unset). See `ExportConfig` for what each target
            builds. Default: `"cpu"`.
        quantization: None, `"float16"`, `"dynamic"` or `"int8"`, as the
            target allows.
        representative_data: sequences for int8 calibration (required for
            `"int8"`, except for a quantization-aware model, whose learned
            ranges are used): a list of `(time, features)` arrays or a
            padded array, typically a few hundred training sequences. Also
            used for verification when `verification_data` is None.
        max_length: the longest sequence of an unrolled (`"gpu"`,
            `"mobile"`) model.
        batch_size: the static batch size of an unrolled model. Default: 1.
        io_type: `"float32"` or, for int8 only, `"int8"` model inputs and
            outputs. Default: `"float32"`.
        stream: None, or the chunk length K of a `stream` signature in the
            file (see `ExportConfig`), a multiple of the model's
            `frame_length`; the model must read forwards only. The stream
            is verified too: every verification sequence streamed in
            chunks of K, of 1 and of uneven sizes must end where Keras'
            whole-sequence model does (float32: max |dprob| < 1e-5), and
            for int8 a long stream is compared with the float stream
            (`ExportReport.stream["drift"]`).
        verification_data: sequences to compare on, or `(sequences,
            labels)` to also report accuracy. Default: the representative
            data, else 256 random sequences.
        latency_runs: if positive, time this many batch-1 calls on one CPU
            thread (and on the GPU for `"gpu"`); the median is reported.
        seed: seed of the random verification sequences.
        timeout: seconds each child process (conversion and CPU run; the
            GPU run) may take before it is stopped and the export fails.
            Default: 1800.

    Returns:
        An `ExportReport`.

    Raises:
        ValueError: an unknown or inconsistent option, int8 without
            representative data, sequences longer than `max_length`.
        FileNotFoundError: the folder of `path` does not exist.
        frozen_model.UnsupportedModelError: the model is not built from
            keras_seqrnn layers the export reads (the layers are named).
        ExportError: the weights are not finite, conversion failed, the
            child process crashed or ran out of time, or the exported model
            disagrees with Keras (`error.report` holds the report). Nothing
            is written then.
    """
    config = _config(
        target, quantization, max_length, batch_size, io_type, stream
    )
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: folder {path.parent} does not exist."
        )
    frozen = frozen_lib.freeze(model)
    non_finite = frozen.non_finite_weights()
    if non_finite:
        raise ExportError(
            f"The model's weights hold NaN or infinity ({', '.join(non_finite)}); "
            f"nothing was written to {path}."
        )
    if frozen.ranges and config.quantization != "int8":
        raise ValueError(
            f"Model {model.name!r} is quantization-aware: its weights and "
            "ranges were trained for int8, so it exports only with "
            "target='mobile', quantization='int8'; export the float model "
            f"for {config.name!r}."
        )
    if config.stream is not None:
        _check_streamable(model, frozen, config)
    if (
        config.quantization == "int8"
        and representative_data is None
        and not frozen.ranges
    ):
        raise ValueError(
            "quantization='int8' needs representative_data: a few hundred "
            "typical input sequences (e.g. the training set) to calibrate "
            "the int8 ranges."
        )
    representative = None
    if representative_data is not None:
        representative = litert_model.prepare_sequences(
            _sample(representative_data, seed),
            None,
            frozen.num_features,
            config.max_length,
        )
    labels = None
    if verification_data is None and representative is not None:
        verification = representative
    elif verification_data is None:
        verification = _synthetic(frozen, config, seed)
    else:
        if isinstance(verification_data, tuple):
            verification_data, labels = verification_data
            labels = np.asarray(labels)
        verification = litert_model.prepare_sequences(
            verification_data, None, frozen.num_features, config.max_length
        )
        if labels is not None and labels.shape != (len(verification[1]),):
            raise ValueError(
                f"Expected {len(verification[1])} labels, got shape "
                f"{labels.shape}."
            )
    if not len(verification[1]):
        raise ValueError("The verification data holds no sequences.")

    reference = _keras_probabilities(model, *verification)
    metadata = {
        "keras_seqrnn": __version__,
        "target": config.target,
        "quantization": config.quantization,
        "max_length": config.max_length,
        "batch_size": config.batch_size,
        "io_type": config.io_type,
        "num_features": frozen.num_features,
        "num_classes": frozen.num_classes,
        "label_names": list(frozen.label_names or []) or None,
        "frame_length": frozen.frame_length,
        "stream": config.stream,
    }
    with tempfile.TemporaryDirectory(prefix="seqrnn-export-") as job_dir:
        job_dir = pathlib.Path(job_dir)
        frozen.save(job_dir / "frozen.npz")
        np.savez(
            job_dir / "verification.npz",
            sequences=verification[0],
            lengths=verification[1],
        )
        if config.quantization == "int8" and not frozen.ranges:
            np.savez(
                job_dir / "representative.npz",
                sequences=_pad_to(representative[0], config.max_length),
                lengths=representative[1],
            )
        results, outputs = child_process.run(
            job_dir,
            {
                "convert": {
                    "whole": config.whole,
                    "stream": config.stream,
                    "chunk_length": config.chunk_length,
                    "unroll": config.unrolled,
                    "batch_size": config.batch_size,
                    "max_length": config.max_length,
                    "quantization": config.quantization,
                    "int8_io": config.io_type == "int8",
                    "metadata": metadata,
                },
                "accelerators": ["cpu"],
                "num_threads": 1,
                "latency_runs": latency_runs,
                "stream": config.stream,
                "drift": config.stream is not None
                and config.quantization == "int8",
            },
            timeout,
        )
        if config.target == "gpu":
            # A second child: the GPU accelerator cannot start in a process
            # that has loaded TensorFlow, as the conversion has.
            gpu_results, gpu_outputs = child_process.run(
                job_dir,
                {
                    "accelerators": ["gpu"],
                    "gpu_optional": True,
                    "latency_runs": latency_runs,
                    "stream": config.stream,
                },
                timeout,
            )
            results.update(gpu_results)
            outputs.update(gpu_outputs)
        content = (job_dir / "model.tflite").read_bytes()
    info = model_file.describe(content)
    if info.custom_ops:
        raise ExportError(
            f"The converted model holds non-builtin ops {info.custom_ops}; "
            "nothing was written."
        )
    probabilities = outputs.get("probabilities_cpu")
    stream_results = None
    if config.stream is not None:
        stream_results = _stream_results(outputs, results, reference, "cpu")
        if probabilities is None:
            probabilities = outputs["stream_probabilities_cpu_chunk"]
    gpu = None
    if config.target == "gpu":
        if "gpu_error" in results:
            gpu = {"error": results["gpu_error"]}
            logger.warning("GPU check skipped: %s", results["gpu_error"])
        else:
            gpu = {
                "fully_accelerated": results["fully_accelerated_gpu"],
                **_compare(
                    outputs.get(
                        "probabilities_gpu",
                        outputs.get("stream_probabilities_gpu_chunk"),
                    ),
                    reference,
                ),
                "latency": results.get("latency_gpu"),
            }
            if config.stream is not None:
                gpu["stream"] = _stream_results(
                    outputs, results, reference, "gpu"
                )
    accuracy = keras_accuracy = None
    if labels is not None:
        accuracy = float(np.mean(probabilities.argmax(-1) == labels))
        keras_accuracy = float(np.mean(reference.argmax(-1) == labels))
    report = ExportReport(
        path=path,
        config=config,
        size=info.size,
        bytes_by_part=info.bytes_by_part,
        weights_by_type=info.weights_by_type,
        ops=info.ops,
        tensor_types=info.tensor_types,
        num_sequences=len(reference),
        **_compare(probabilities, reference),
        accuracy=accuracy,
        keras_accuracy=keras_accuracy,
        latency=results.get("latency_cpu"),
        gpu=gpu,
        stream=stream_results,
        failures=_failures(
            config, probabilities, reference, gpu, accuracy, keras_accuracy
        )
        + _stream_failures(config, stream_results, gpu),
    )
    if not report.passed:
        raise ExportError(
            f"The exported model failed verification ({'; '.join(report.failures)}); "
            f"nothing was written to {path}.",
            report,
        )
    with atomic.atomic_path(path) as tmp:
        tmp.write_bytes(content)
    return report


def _config(target, quantization, max_length, batch_size, io_type, stream):
    fields = {
        "quantization": quantization,
        "max_length": max_length,
        "batch_size": batch_size,
        "io_type": io_type,
        "stream": stream,
    }
    given = {name: value for name, value in fields.items() if value is not None}
    if isinstance(target, ExportConfig):
        if given:
            raise ValueError(
                "Give either an ExportConfig or separate options, not both; "
                f"got an ExportConfig and {', '.join(given)}."
            )
        return target
    if not isinstance(target, str):
        raise TypeError(
            "Expected `target` as a name or an ExportConfig, got "
            f"{type(target).__name__}."
        )
    if target in TARGETS:
        return ExportConfig(target=target, **given)
    if target in PRESETS:
        return ExportConfig.preset(target, **given)
    raise ValueError(
        f"Unknown target {target!r}; expected cpu, gpu, mobile, a preset "
        f"({', '.join(PRESETS)}) or an ExportConfig."
    )


def _check_streamable(model, frozen, config):
    if frozen.backward_layers is not None:
        raise ValueError(
            f"Model {model.name!r} is bidirectional: its backward stack reads "
            "each sequence from its end, so it cannot stream. Train a "
            "forward-only model (`bidirectional=False`, `seqrnn train "
            "--no-bidirectional`) to export a stream signature."
        )
    if frozen.ranges:
        raise ValueError(
            f"Model {model.name!r} is quantization-aware: its ranges were "
            "learned on whole sequences, not on a stream's state. Export the "
            "float model with stream and quantization='int8' (calibrated)."
        )
    if config.stream % frozen.frame_length:
        raise ValueError(
            f"stream={config.stream} must be a multiple of the model's "
            f"frame_length {frozen.frame_length}: a chunk holds whole frames."
        )


def _stream_results(outputs, results, reference, accelerator):
    """The stream's comparisons with Keras, by chunking, and its drift."""
    prefix = f"stream_probabilities_{accelerator}_"
    measured = {
        "chunkings": {
            name[len(prefix) :]: _compare(value, reference[: len(value)])
            for name, value in outputs.items()
            if name.startswith(prefix)
        },
        "latency": results.get(f"stream_latency_{accelerator}"),
    }
    if f"drift_{accelerator}" in results:
        measured["drift"] = results[f"drift_{accelerator}"]
    return measured


def _stream_failures(config, stream, gpu):
    failures = []
    sources = [("stream", stream)]
    if gpu is not None and "stream" in gpu:
        sources.append(("gpu stream", gpu["stream"]))
    for label, measured in sources:
        if measured is None:
            continue
        for chunking, values in measured["chunkings"].items():
            if not np.isfinite(values["max_abs_diff"]):
                failures.append(
                    f"{label} ({chunking}) probabilities hold NaN or infinity"
                )
            elif config.quantization is None and label == "stream":
                if not values["max_abs_diff"] < STREAM_FLOAT32_TOLERANCE:
                    failures.append(
                        f"{label} ({chunking}) float32 max |dprob| "
                        f"{values['max_abs_diff']:.2e} >= "
                        f"{STREAM_FLOAT32_TOLERANCE:.0e}"
                    )
            else:
                minimum = (
                    MIN_INT8_AGREEMENT
                    if config.quantization == "int8"
                    else MIN_AGREEMENT
                )
                if values["agreement"] < minimum:
                    failures.append(
                        f"{label} ({chunking}) top-1 agreement "
                        f"{values['agreement']:.2%} < {minimum:.1%}"
                    )
        drift = measured.get("drift")
        if drift is not None and drift["agreement"] < MIN_STREAM_DRIFT_AGREEMENT:
            failures.append(
                f"int8 stream agrees with the float stream on "
                f"{drift['agreement']:.2%} of {drift['checkpoints']} "
                f"checkpoints over {drift['steps']} steps < "
                f"{MIN_STREAM_DRIFT_AGREEMENT:.0%}"
            )
    return tuple(failures)


def _sample(sequences, seed):
    """At most `_MAX_REPRESENTATIVE` sequences, drawn without replacement."""
    if len(sequences) <= _MAX_REPRESENTATIVE:
        return sequences
    rows = np.sort(
        np.random.default_rng(seed).choice(
            len(sequences), _MAX_REPRESENTATIVE, replace=False
        )
    )
    if isinstance(sequences, np.ndarray):
        return sequences[rows]
    return [sequences[i] for i in rows]


def _synthetic(frozen, config, seed):
    rng = np.random.default_rng(seed)
    longest = config.max_length or _SYNTHETIC_MAX_LENGTH
    lengths = rng.integers(1, longest + 1, _SYNTHETIC_SEQUENCES)
    sequences = []
    for length in lengths:
        z = rng.standard_normal((length, frozen.num_features))
        if frozen.input_scale is not None:
            z = (z - frozen.input_shift) / frozen.input_scale
        sequences.append(z.astype(np.float32))
    return litert_model.prepare_sequences(
        sequences, None, frozen.num_features, config.max_length
    )


def _pad_to(padded, steps):
    if steps is None or padded.shape[1] == steps:
        return padded
    out = np.zeros((len(padded), steps, padded.shape[2]), padded.dtype)
    out[:, : padded.shape[1]] = padded
    return out


def _keras_probabilities(model, padded, lengths, chunk=256):
    mask_value = getattr(model, "mask_value", 0.0)
    inputs = np.where(
        np.arange(padded.shape[1])[None, :, None] < lengths[:, None, None],
        padded,
        np.float32(mask_value),
    ).astype(np.float32)
    return np.concatenate(
        [
            np.asarray(
                keras.ops.convert_to_numpy(
                    model(inputs[i : i + chunk], training=False)
                ),
                np.float32,
            )
            for i in range(0, len(inputs), chunk)
        ]
    )


def _compare(probabilities, reference):
    return {
        "agreement": float(
            np.mean(probabilities.argmax(-1) == reference.argmax(-1))
        ),
        "max_abs_diff": float(np.max(np.abs(probabilities - reference))),
    }


def _failures(config, probabilities, reference, gpu, accuracy, keras_accuracy):
    if not np.all(np.isfinite(reference)):
        return ("the Keras model's probabilities hold NaN or infinity",)
    if not np.all(np.isfinite(probabilities)):
        return ("the exported model's probabilities hold NaN or infinity",)
    failures = []
    measured = _compare(probabilities, reference)
    if config.quantization is None:
        if not measured["max_abs_diff"] < FLOAT32_TOLERANCE:
            failures.append(
                f"float32 max |dprob| {measured['max_abs_diff']:.2e} >= "
                f"{FLOAT32_TOLERANCE:.0e}"
            )
    else:
        minimum = MIN_INT8_AGREEMENT if config.quantization == "int8" else MIN_AGREEMENT
        if measured["agreement"] < minimum:
            failures.append(
                f"top-1 agreement {measured['agreement']:.2%} < {minimum:.1%}"
            )
    if (
        config.quantization == "int8"
        and accuracy is not None
        and accuracy < keras_accuracy - MAX_INT8_ACCURACY_DROP
    ):
        failures.append(
            f"int8 accuracy {accuracy:.2%} is more than "
            f"{100 * MAX_INT8_ACCURACY_DROP:.1f} points below Keras' "
            f"{keras_accuracy:.2%}"
        )
    if gpu is not None and not np.isfinite(gpu.get("max_abs_diff", 0.0)):
        failures.append("the GPU accelerator's probabilities hold NaN or infinity")
    if gpu is not None and gpu.get("fully_accelerated") is False:
        failures.append("the GPU accelerator did not take every op")
    return tuple(failures)
