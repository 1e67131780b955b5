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
        arrays[f"probabilities_{accelerator}"] = model.predict(
            sequences, lengths
        )
        results[f"fully_accelerated_{accelerator}"] = model.fully_accelerated
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


def _enter(job_dir, stage):
    (job_dir / "stage").write_text(stage)


def _convert(job_dir, options):
    from export import frozen_model
    from export import graph
    from export import model_file

    frozen = frozen_model.FrozenModel.load(job_dir / "frozen.npz")
    function = graph.classifier_function(
        frozen,
        unroll=options["unroll"],
        batch_size=options["batch_size"],
        max_length=options["max_length"],
    )
    representative = None
    if (job_dir / "representative.npz").exists():
        with np.load(job_dir / "representative.npz") as data:
            representative = _batches(
                data["sequences"], data["lengths"], options["batch_size"]
            )
    model = graph.convert(
        function,
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
