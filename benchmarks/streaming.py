"""Streaming against re-classifying a sliding window, per new sample.

Trains a forward-only JapaneseVowels model (`seqrnn train --no-bidirectional
--pooling last`, or loads `--model`), exports for each target
(`cpu` float32, `gpu` float32, `mobile` int8) stream-only files with chunks
of K = 1, 8 and 32 samples (the `cpu` file takes any K) and whole-sequence
files for windows of W = 29, 128 and 1,024 steps (`cpu`: one loop file for
any W; `gpu`/`mobile`: unrolled over W, up to 128: the point of streaming is
not to build them), all through `export.to_tflite` with its verification.
Then, on one CPU thread (LiteRT `invoke` alone, inputs set, median of
`--runs` calls, the same run for every file):

- per new sample, a stream costs one call of K samples / K; re-classifying a
  W-step window costs one call of W steps; the ratio is the saving;
- file size of each stream file against the whole-sequence file at W;
- int8 drift: 8 streams of 10,000 steps (test utterances one after
  another), the `mobile` int8 stream (K = 8) against the float stream, top-1
  agreement at every chunk.

    python benchmarks/streaming.py [--model runs/stream/model.keras]

Prints a table and writes benchmarks/results/streaming.json.
"""

import argparse
import json
import os
import pathlib
import platform
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from ai_edge_litert import interpreter as interpreter_lib  # noqa: E402

import export  # noqa: E402
import keras_seqrnn  # noqa: E402
from export import child_process  # noqa: E402
from export import frozen_model  # noqa: E402
from export import graph  # noqa: E402
from export.litert_model import median_seconds  # noqa: E402
from keras_seqrnn import cli  # noqa: E402
from keras_seqrnn.datasets import load_japanese_vowels  # noqa: E402

CHUNKS = (1, 8, 32)
WINDOWS = (29, 128, 1024)
UNROLLED_WINDOWS = (29, 128)
TARGETS = {"cpu": None, "gpu": None, "mobile": "int8"}
DRIFT_STEPS = 10_000


def invoke_seconds(path, inputs, runs):
    """Median seconds of `invoke` on the file's one signature, inputs set."""
    interpreter = interpreter_lib.Interpreter(str(path), num_threads=1)
    runner = interpreter.get_signature_runner()
    details = runner.get_input_details()
    del runner  # it holds the interpreter, which then refuses to resize
    for name, value in inputs.items():
        interpreter.resize_tensor_input(details[name]["index"], value.shape)
    interpreter.allocate_tensors()
    for name, value in inputs.items():
        interpreter.set_tensor(details[name]["index"], value)
    return median_seconds(interpreter.invoke, runs, warmup=20)


def stream_inputs(runner, chunk):
    state = runner.initial_state(1)
    return {
        "chunk": np.random.default_rng(0).normal(
            size=(1, chunk, runner.num_features)
        ).astype(np.float32),
        "count": np.array([chunk], np.int32),
        **state,
    }


def window_inputs(features, window):
    return {
        "sequences": np.random.default_rng(0).normal(
            size=(1, window, features)
        ).astype(np.float32),
        "lengths": np.array([window], np.int32),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=None)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).parent / "results" / "streaming.json",
    )
    args = parser.parse_args()
    (x_train, _), (x_test, y_test) = load_japanese_vowels()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        model_path = args.model
        if model_path is None:
            run = folder / "run"
            argv = ["train", "--out", str(run), "--no-bidirectional",
                    "--pooling", "last"]
            assert cli.main(argv) == 0
            model_path = run / "model.keras"
        model = keras_seqrnn.load_classifier(model_path)
        common = {
            "representative_data": x_train,
            "verification_data": (x_test, y_test),
        }
        rows, results = [], {"machine": platform.processor() or platform.machine()}
        for target, quantization in TARGETS.items():
            name = target if quantization is None else f"{target}-{quantization}"
            files, reports = {}, {}
            chunks = (max(CHUNKS),) if target == "cpu" else CHUNKS
            for chunk in chunks:
                path = folder / f"{name}-stream{chunk}.tflite"
                reports[f"stream{chunk}"] = export.to_tflite(
                    model, path, target, quantization, stream=chunk, **common
                )
                files[f"stream{chunk}"] = path
            windows = (None,) if target == "cpu" else UNROLLED_WINDOWS
            for window in windows:
                path = folder / f"{name}-whole{window}.tflite"
                reports[f"whole{window}"] = export.to_tflite(
                    model, path, target, quantization, max_length=window, **common
                )
                files[f"whole{window}"] = path
            if target == "cpu":
                # The cpu file's stream signature, alone, so that it is the
                # interpreter's first subgraph (the same function).
                alone = folder / "cpu-stream-alone.tflite"
                function = graph.stream_function(
                    frozen_model.freeze(model), unroll=False
                )
                alone.write_bytes(graph.convert({"stream": function}, None))
            stream_file = lambda k: (  # noqa: E731
                alone if target == "cpu" else files[f"stream{k}"]
            )
            per_sample = {}
            for chunk in CHUNKS:
                runner = export.LiteRTModel(files[f"stream{chunks[-1]}"])
                seconds = invoke_seconds(
                    stream_file(chunk), stream_inputs(runner, chunk), args.runs
                )
                per_sample[chunk] = seconds / chunk
            window_cost = {}
            for window in WINDOWS:
                key = "whole" + ("None" if target == "cpu" else str(window))
                if key in files:
                    window_cost[window] = invoke_seconds(
                        files[key], window_inputs(model.num_features, window),
                        args.runs,
                    )
            entry = {
                "per_sample_stream_us": {k: v * 1e6 for k, v in per_sample.items()},
                "window_us": {w: v * 1e6 for w, v in window_cost.items()},
                "ratio": {
                    f"W{w}/K{k}": window_cost[w] / per_sample[k]
                    for w in window_cost
                    for k in per_sample
                },
                "size_kib": {
                    key: report.size / 1024 for key, report in reports.items()
                },
                "stream_verification": {
                    key: report.stream
                    for key, report in reports.items()
                    if report.stream is not None
                },
            }
            if quantization == "int8":
                runner = export.LiteRTModel(files["stream8"])
                frozen = frozen_model.freeze(model)
                lengths = np.array([len(s) for s in x_test])
                padded = keras_seqrnn.data.pad(x_test)[0]
                streams = child_process.stream_inputs(
                    np.nan_to_num(padded), lengths, DRIFT_STEPS,
                    child_process.DRIFT_STREAMS, 8,
                )
                entry["drift"] = child_process.drift(
                    runner, graph.stream_function(frozen, unroll=False),
                    streams, 8,
                )
            results[name] = entry
            for window, cost in window_cost.items():
                for chunk, sample in per_sample.items():
                    rows.append(
                        (name, window, chunk, f"{cost * 1e6:.0f}",
                         f"{sample * 1e6:.2f}", f"{cost / sample:.0f}x",
                         "yes" if cost / sample >= window / 2 else "no")
                    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    header = ("target", "window W", "chunk K", "window call (us)",
              "stream per sample (us)", "saving", ">= W/2")
    print(cli._table(header, rows))
    for name, entry in results.items():
        if name == "machine":
            continue
        print(f"{name} sizes (KiB): " + ", ".join(
            f"{k} {v:.1f}" for k, v in entry["size_kib"].items()))
        if "drift" in entry:
            drift = entry["drift"]
            print(
                f"{name} drift: agreement with the float stream "
                f"{drift['agreement']:.2%} over {drift['checkpoints']} "
                f"checkpoints x {drift['streams']} streams of "
                f"{drift['steps']} steps (worst checkpoint "
                f"{drift['worst_checkpoint']:.2%})"
            )


if __name__ == "__main__":
    main()
