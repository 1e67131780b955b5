"""Conversion and LiteRT runs in a child process.

The TFLite converter and the LiteRT runtime are C++ that can abort the
process (a calibrated loop segfaults the converter, int16x8 graphs abort the
CPU runtime: `../shared/DESIGN.md`). So `to_tflite` does both here, in a
child Python process (`main(JOB_DIR)`), and a crash becomes an
`ExportError` naming the stage that crashed and the signal, instead of a dead
Python process.

A job folder holds `job.json` and the arrays (`frozen.npz`,
`representative.npz`, `verification.npz`); the child writes `model.tflite`,
`results.json`, `results.npz`, and, before each stage, its name to `stage`.
"""

import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import traceback

import numpy as np

STAGES = {
    "convert": "converting the model",
    "run-cpu": "running the model on the LiteRT CPU runtime",
    "run-gpu": "running the model on the LiteRT GPU accelerator",
    "stream-cpu": "streaming on the LiteRT CPU runtime",
    "stream-gpu": "streaming on the LiteRT GPU accelerator",
    "drift": "comparing a long int8 stream with the float stream",
    "latency": "timing the model on LiteRT",
}


class ExportError(RuntimeError):
    """An export that failed: conversion, a runtime crash, or verification.

    Attributes:
        report: the `ExportReport` when verification failed, else None.
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


DEFAULT_TIMEOUT = 1800.0
# `python -c` puts the working folder first on `sys.path`, where a user's
# own `export.py` would shadow this package: the package's own folder
# replaces it.
_BOOTSTRAP = (
    "import sys; sys.path[0] = {root!r}; "
    "from export.child_process import main; main(sys.argv[1])"
)


def run(job_dir: pathlib.Path, job: dict, timeout: float = DEFAULT_TIMEOUT):
    """Runs `job` in a child process; returns `(results, arrays)`.

    Args:
        job_dir: the job folder.
        job: what to do, written to `job.json`.
        timeout: seconds before the child is killed.

    Raises:
        ExportError: the child failed, crashed or ran out of time; the
            message names the stage, and the signal or the child's error.
    """
    job_dir = pathlib.Path(job_dir)
    (job_dir / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _BOOTSTRAP.format(root=root), str(job_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise ExportError(
            f"The export child process was still {_stage(job_dir)} after "
            f"{timeout:g} s and was stopped; nothing was written (raise "
            "`timeout` for a large model)."
        ) from None
    if completed.returncode < 0:
        name = signal.Signals(-completed.returncode).name
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        raise ExportError(
            f"The child process crashed with {name} while "
            f"{_stage(job_dir)}; nothing was written. Last output:\n{tail}"
        )
    if completed.returncode != 0:
        error = job_dir / "error.txt"
        message = (
            error.read_text().strip()
            if error.exists()
            else completed.stderr.strip()[-2000:]
        )
        raise ExportError(f"Failed while {_stage(job_dir)}: {message}")
    results = json.loads((job_dir / "results.json").read_text())
    with np.load(job_dir / "results.npz") as arrays:
        return results, dict(arrays)


def _stage(job_dir):
    stage = job_dir / "stage"
    if not stage.exists():
        return "starting"
    return STAGES.get(stage.read_text(), stage.read_text())


def _main(job_dir: pathlib.Path) -> None:
    # Imported here: the parent imports this module without TensorFlow.
    from export import litert_model

    job = json.loads((job_dir / "job.json").read_text())
    results, arrays = {}, {}
    path = job_dir / "model.tflite"
    if job.get("convert"):
        _enter(job_dir, "convert")
        path.write_bytes(_convert(job_dir, job["convert"]))
    with np.load(job_dir / "verification.npz") as verification:
        sequences = verification["sequences"]
        lengths = verification["lengths"]
    for accelerator in job.get("accelerators", []):
        _enter(job_dir, f"run-{accelerator}")
        try:
            model = litert_model.LiteRTModel(
                path,
                accelerator,
                num_threads=job.get("num_threads"),
                gpu_enforce_f32=job.get("gpu_enforce_f32", False),
            )
        except RuntimeError as error:
            if accelerator != "gpu" or not job.get("gpu_optional"):
                raise
            results["gpu_error"] = str(error)
            continue
        results[f"fully_accelerated_{accelerator}"] = model.fully_accelerated
        if model.has_stream:
            _enter(job_dir, f"stream-{accelerator}")
            _check_stream(
                model, sequences, lengths, job, job_dir, results, arrays
            )
        if not model.has_whole:
            continue
        _enter(job_dir, f"run-{accelerator}")
        arrays[f"probabilities_{accelerator}"] = model.predict(
            sequences, lengths
        )
        if job.get("latency_runs"):
            _enter(job_dir, "latency")
            longest = int(np.argmax(lengths))
            runs = job["latency_runs"]
            if accelerator == "gpu":
                # Software Vulkan takes milliseconds per call.
                runs = max(3, runs // 10)
            results[f"latency_{accelerator}"] = model.latency(
                sequences[longest, : lengths[longest]], runs=runs
            )
    (job_dir / "results.json").write_text(json.dumps(results))
    np.savez(job_dir / "results.npz", **arrays)


# Streamed one step at a time and in uneven chunks: this many sequences.
_STREAM_CHECKED = 64
# The int8 drift check: streams of this many steps, each verification
# sequences one after another.
DRIFT_STEPS = 2000
DRIFT_STREAMS = 8


def _check_stream(model, sequences, lengths, job, job_dir, results, arrays):
    """Streams the verification sequences through the `stream` signature
    in chunks of K, one step at a time and in uneven chunks; for int8, a
    long stream against the float stream (`_drift`)."""
    from export import litert_model

    accelerator = model.accelerator
    chunk = job.get("stream") or model.chunk_length
    few = slice(0, _STREAM_CHECKED)
    for name, rows, sizes in (
        ("chunk", slice(None), chunk),
        ("one", few, 1),
        ("uneven", few, [max(1, chunk // 2 + 1), 1, 2 * chunk - 1]),
    ):
        arrays[f"stream_probabilities_{accelerator}_{name}"] = (
            model.stream_predict(sequences[rows], lengths[rows], sizes)
        )
    if job.get("latency_runs"):
        batch = model.stream_batch_size or 1
        state = model.initial_state(batch)
        x = np.zeros((batch, chunk, model.num_features), np.float32)
        count = np.full(batch, chunk, np.int32)
        runs = job["latency_runs"]
        if accelerator == "gpu":
            runs = max(3, runs // 10)
        results[f"stream_latency_{accelerator}"] = litert_model.median_seconds(
            lambda: model.stream_step(x, count, state), runs
        )
    if job.get("drift") and accelerator == "cpu":
        _enter(job_dir, "drift")
        results["drift_cpu"] = _drift(
            model, sequences, lengths, chunk, job, job_dir
        )


def _drift(model, sequences, lengths, chunk, job, job_dir):
    """Top-1 agreement of this (int8) stream with the float stream at every
    chunk of `DRIFT_STREAMS` streams of `DRIFT_STEPS` steps."""
    from export import frozen_model
    from export import graph

    frozen = frozen_model.FrozenModel.load(job_dir / "frozen.npz")
    reference = graph.stream_function(frozen, unroll=False)
    streams = stream_inputs(
        sequences, lengths, job.get("drift_steps", DRIFT_STEPS),
        DRIFT_STREAMS, chunk,
    )
    return drift(model, reference, streams, chunk)


def stream_inputs(sequences, lengths, steps, count, chunk, seed=0):
    """`count` streams of `steps` steps (a multiple of `chunk`), each the
    sequences one after another in a random order."""
    rng = np.random.default_rng(seed)
    steps = -(-steps // chunk) * chunk
    real = [s[:n] for s, n in zip(sequences, lengths) if n]
    streams = []
    for _ in range(count):
        parts, total = [], 0
        while total < steps:
            parts.append(real[rng.integers(len(real))])
            total += len(parts[-1])
        streams.append(np.concatenate(parts)[:steps])
    return np.stack(streams).astype(np.float32)


def drift(model, reference, streams, chunk) -> dict:
    """Compares a `LiteRTModel`'s stream with a float stream function on
    the same chunks: top-1 agreement at the end of every chunk.

    Args:
        model: a `LiteRTModel` with a stream signature.
        reference: a `graph.stream_function` (float, any chunk length).
        streams: `(streams, steps, features)`, `steps` a multiple of
            `chunk`.
        chunk: steps per call.

    Returns:
        A dict: `steps`, `streams`, `checkpoints`, `agreement` (over all
        checkpoints and streams), `worst_checkpoint` (the lowest agreement
        across streams at one checkpoint).
    """
    from export import graph

    count, steps, _ = streams.shape
    session = model.stream(count)
    state = None
    agreements = []
    for start in range(0, steps, chunk):
        part = streams[:, start : start + chunk]
        got = session.push(list(part))
        want, state = graph.run_stream(
            reference, part, np.full(count, chunk, np.int32), state
        )
        agreements.append(np.mean(got.argmax(-1) == want.argmax(-1)))
    return {
        "steps": int(steps),
        "streams": int(count),
        "checkpoints": len(agreements),
        "agreement": float(np.mean(agreements)),
        "worst_checkpoint": float(np.min(agreements)),
    }


def _enter(job_dir, stage):
    (job_dir / "stage").write_text(stage)


def _convert(job_dir, options):
    from export import frozen_model
    from export import graph
    from export import litert_model
    from export import model_file

    frozen = frozen_model.FrozenModel.load(job_dir / "frozen.npz")
    functions = {}
    if options.get("whole", True):
        functions[litert_model.SIGNATURE] = graph.classifier_function(
            frozen,
            unroll=options["unroll"],
            batch_size=options["batch_size"],
            max_length=options["max_length"],
        )
    if options.get("stream"):
        functions[litert_model.STREAM_SIGNATURE] = graph.stream_function(
            frozen,
            unroll=options["unroll"],
            batch_size=options["batch_size"],
            chunk_length=options["chunk_length"],
        )
    representative = None
    if (job_dir / "representative.npz").exists():
        with np.load(job_dir / "representative.npz") as data:
            sequences, lengths = data["sequences"], data["lengths"]
        representative = []
        if litert_model.SIGNATURE in functions:
            representative += [
                (
                    litert_model.SIGNATURE,
                    {litert_model.SEQUENCES: x, litert_model.LENGTHS: n},
                )
                for x, n in _batches(sequences, lengths, options["batch_size"])
            ]
        if litert_model.STREAM_SIGNATURE in functions:
            representative += _stream_samples(
                graph.stream_function(frozen, unroll=False),
                sequences,
                lengths,
                options["batch_size"],
                options["stream"],
            )
    model = graph.convert(
        functions,
        options["quantization"],
        representative,
        int8_io=options["int8_io"],
    )
    return model_file.finalize(model, options["metadata"])


def _batches(sequences, lengths, batch_size):
    """Static-size batches; the last one wraps around to the start."""
    count = len(sequences)
    batch_size = batch_size or min(count, 32)
    for start in range(0, count, batch_size):
        rows = np.arange(start, start + batch_size) % count
        yield sequences[rows], lengths[rows]


# Calibration chunks of the stream signature, at most.
_STREAM_SAMPLES = 1024


def _stream_samples(stream, sequences, lengths, batch_size, chunk):
    """The stream signature's inputs as the float stream meets them: each
    batch of sequences pushed 1, K/2 + 1 and K steps at a time in turn, so
    that calibration sees states after every kind of chunk, not only the
    zero state of a sequence shorter than K."""
    from export import graph
    from export import litert_model

    sizes = (1, chunk // 2 + 1, chunk)
    samples = []
    for x, n in _batches(sequences, lengths, batch_size):
        state, start, k = None, 0, 0
        while start < max(int(n.max()), 1):
            size = sizes[k % len(sizes)]
            k += 1
            part = np.zeros((len(x), chunk, x.shape[2]), np.float32)
            piece = x[:, start : start + size]
            part[:, : piece.shape[1]] = piece
            count = np.clip(n - start, 0, size).astype(np.int32)
            _, after = graph.run_stream(stream, part, count, state)
            if state is None:
                state = {name: np.zeros_like(v) for name, v in after.items()}
            samples.append(
                (
                    litert_model.STREAM_SIGNATURE,
                    {litert_model.CHUNK: part, litert_model.COUNT: count, **state},
                )
            )
            state, start = after, start + size
            if len(samples) >= _STREAM_SAMPLES:
                return samples
    return samples


def main(job_dir: str) -> None:
    """The child's entry point: runs the job in `job_dir`."""
    logging.disable(logging.WARNING)
    directory = pathlib.Path(job_dir)
    try:
        _main(directory)
    except Exception as error:  # reported to the parent, one line
        (directory / "error.txt").write_text(
            f"{type(error).__name__}: {error}"
        )
        traceback.print_exc()
        sys.exit(1)
