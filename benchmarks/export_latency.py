"""Exported models: file size and batch-1 latency against Keras.

Trains the default JapaneseVowels model (`seqrnn train` defaults, or loads
`--model`), exports every preset with `export.to_tflite`, and measures each
file's size and its batch-1 latency on the longest test sequence (LiteRT, one
CPU thread, median of `--runs` calls, in the export's child process), next to
Keras `predict_on_batch` (with XLA, as the model was compiled, and without,
Keras' default on CPU) and `model(x)` on the same sequence in the same run. Also converts Keras' own `model.export(format="litert")` of an
equivalent `SimpleRNN` stack, for its size (it holds Flex ops and cannot run
on the stock LiteRT runtime), next to our export of the same stack with the
same weights.

    python benchmarks/export_latency.py [--model runs/demo/model.keras]

Prints a table and writes benchmarks/results/export_latency.json.
"""

import argparse
import json
import os
import pathlib
import platform
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import export  # noqa: E402
import keras_seqrnn  # noqa: E402
from export import model_file  # noqa: E402
from export.litert_model import median_seconds  # noqa: E402
from keras_seqrnn import cli  # noqa: E402
from keras_seqrnn import data  # noqa: E402
from keras_seqrnn.datasets import load_japanese_vowels  # noqa: E402


def keras_latency(call, x, runs):
    return median_seconds(lambda: call(x), runs, warmup=10)


def simple_rnn_comparison(model, folder, x_test, y_test, runs):
    """Keras' own LiteRT export of a `SimpleRNN` stack of the model's widths,
    against ours of the same stack with the same weights.

    Keras' file holds Flex ops and cannot run on the stock runtime; ours of
    the same math (`HighwayStackedRNN(highway=None)` is a SimpleRNN stack)
    is exported as `cpu` float32 and checked against Keras' SimpleRNN.
    """
    units = model.rnn.layer_units
    simple = keras.Sequential(
        [keras.Input((None, model.num_features)), keras.layers.Masking()]
        + [
            keras.layers.SimpleRNN(n, return_sequences=i < len(units) - 1)
            for i, n in enumerate(units)
        ]
        + [keras.layers.Dense(model.num_classes, activation="softmax")]
    )
    ours = keras.Sequential(
        [
            keras.Input((None, model.num_features)),
            keras.layers.Masking(),
            keras_seqrnn.HighwayStackedRNN(units, highway=None),
            keras.layers.Dense(model.num_classes, activation="softmax"),
        ]
    )
    ours.set_weights(simple.get_weights())
    path = folder / "keras_simple_rnn.tflite"
    try:
        simple.export(str(path), format="litert", verbose=False)
        info = model_file.describe(path.read_bytes())
        keras_export = {"size": info.size, "flex_ops": info.flex_ops}
    except Exception as error:  # reported, not fatal
        keras_export = {"error": f"{type(error).__name__}: {error}"[:300]}
    report = export.to_tflite(
        ours,
        folder / "simple_rnn_stack.tflite",
        "cpu",
        verification_data=(x_test, y_test),
        latency_runs=runs,
    )
    # Keras' Masking layer masks zero steps.
    padded, _ = data.pad(x_test, value=0.0)
    difference = export.LiteRTModel(report.path).predict(
        x_test
    ) - simple.predict_on_batch(padded)
    return {
        "keras": keras_export,
        "ours": {
            "size": report.size,
            "bytes_by_part": report.bytes_by_part,
            "latency": report.latency,
            "max_abs_diff_vs_keras_simple_rnn": float(np.abs(difference).max()),
        },
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path, default=None)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).parent / "results" / "export_latency.json",
    )
    args = parser.parse_args()
    (x_train, _), (x_test, y_test) = load_japanese_vowels()
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        model_path = args.model
        if model_path is None:
            assert cli.main(["train", "--out", str(folder / "run")]) == 0
            model_path = folder / "run" / "model.keras"
        model = keras.saving.load_model(model_path)
        padded, _ = data.pad(x_test, value=model.mask_value)
        longest = padded[np.argmax([len(s) for s in x_test])][None]
        # The trained model predicts with XLA (`compile`'s default here);
        # Keras' own default on a CPU-only machine ("auto") is without.
        plain = keras.saving.load_model(model_path)
        plain.compile(jit_compile=False)
        keras_rows = {
            "predict_on_batch": keras_latency(
                model.predict_on_batch, longest, 200
            ),
            "predict_on_batch (no XLA)": keras_latency(
                plain.predict_on_batch, longest, 200
            ),
            "model(x)": keras_latency(
                lambda x: model(x, training=False), longest, 200
            ),
        }
        reports = {}
        for name in export.PRESETS:
            extra = {} if name.startswith("cpu") else {"max_length": 29}
            reports[name] = export.to_tflite(
                model,
                folder / f"{name}.tflite",
                name,
                representative_data=x_train,
                verification_data=(x_test, y_test),
                latency_runs=args.runs,
                **extra,
            )
        comparison = simple_rnn_comparison(
            model, folder, x_test, y_test, args.runs
        )

    baseline = keras_rows["predict_on_batch"]
    plain = keras_rows["predict_on_batch (no XLA)"]
    rows = [
        (
            f"keras {k}",
            "-",
            "-",
            "-",
            f"{v * 1e6:.0f}",
            f"{baseline / v:.1f}x",
            f"{plain / v:.1f}x",
        )
        for k, v in keras_rows.items()
    ]
    for name, report in reports.items():
        rows.append(
            (
                name,
                f"{report.size / 1024:.1f}",
                f"{report.bytes_by_part['weights'] / 1024:.1f}",
                f"{100 * report.accuracy:.2f}",
                f"{report.latency * 1e6:.0f}",
                f"{baseline / report.latency:.1f}x",
                f"{plain / report.latency:.1f}x",
            )
        )
    header = (
        "model",
        "size KiB",
        "weights KiB",
        "test acc %",
        "batch-1 us",
        "vs predict_on_batch",
        "vs no-XLA predict_on_batch",
    )
    print(cli._table(header, rows))
    keras_export, ours = comparison["keras"], comparison["ours"]
    keras_size = (
        f"{keras_export['size'] / 1024:.1f} KiB, Flex ops "
        f"{keras_export['flex_ops']} (cannot run)"
        if "size" in keras_export
        else keras_export["error"]
    )
    print(
        f"SimpleRNN stack {model.rnn.layer_units}, same weights: Keras "
        f"model.export(format='litert') {keras_size}; ours (cpu float32) "
        f"{ours['size'] / 1024:.1f} KiB, {ours['latency'] * 1e6:.0f} us, "
        f"max |dprob| vs Keras SimpleRNN "
        f"{ours['max_abs_diff_vs_keras_simple_rnn']:.1e}"
    )
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "keras_seconds": keras_rows,
        "keras_accuracy": reports["cpu"].keras_accuracy,
        "exports": {name: r.to_dict() for name, r in reports.items()},
        "speedup_vs_predict_on_batch": {
            name: baseline / r.latency for name, r in reports.items()
        },
        "speedup_vs_predict_on_batch_without_xla": {
            name: plain / r.latency for name, r in reports.items()
        },
        "simple_rnn_stack": comparison,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
