"""The `seqrnn` command line: train a sequence classifier and report on it."""

import argparse
import json
import os
import pathlib
import sys
import time

from keras_seqrnn.version import __version__

BUNDLED_DATA = ("japanese_vowels",)
# The JapaneseVowels files label the speakers 1 to 9.
JAPANESE_VOWELS_LABELS = tuple(str(k) for k in range(1, 10))


class DataError(ValueError):
    """Data that cannot be trained on, reported as one line, exit code 1."""
HIGHWAY_CHOICES = ("depth", "time", "both", "none")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqrnn",
        description="Train and report on keras_seqrnn sequence classifiers.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="train a classifier and report its test accuracy",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument(
        "--data",
        default="japanese_vowels",
        help="a bundled data set (japanese_vowels) or a UEA/UCR .ts "
        "training file",
    )
    train.add_argument(
        "--test-data", help="the .ts test file, with a .ts --data file"
    )
    train.add_argument(
        "--out", required=True, type=pathlib.Path, help="output folder"
    )
    train.add_argument("--units", type=_positive_int, default=64)
    train.add_argument("--layers", type=_positive_int, default=2)
    train.add_argument("--highway", choices=HIGHWAY_CHOICES, default="depth")
    train.add_argument("--epochs", type=_positive_int, default=60)
    train.add_argument("--batch-size", type=_positive_int, default=32)
    train.add_argument("--lr", type=_positive_float, default=3e-3)
    train.add_argument("--seed", type=int, default=0)
    train.set_defaults(run=_train)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number, got {text!r}"
        )
    return value


def _load(args):
    from keras_seqrnn import datasets

    if args.data in BUNDLED_DATA:
        if args.test_data is not None:
            raise DataError(
                f"--test-data is only for .ts files; {args.data!r} is a "
                "bundled data set with its own test split."
            )
        return datasets.load_japanese_vowels(), JAPANESE_VOWELS_LABELS
    if args.test_data is None:
        raise DataError(
            f"--data {args.data!r} is a file: give its test file with "
            "--test-data."
        )
    train = datasets.load_ts(args.data)
    test = datasets.load_ts(args.test_data)
    for name, split in ((args.data, train), (args.test_data, test)):
        if split.labels is None:
            raise DataError(f"{name}: the file has no class labels.")
    if test.label_names != train.label_names:
        raise DataError(
            f"{args.test_data}: class labels {list(test.label_names)} differ "
            f"from the training file's {list(train.label_names)}."
        )
    splits = ((train.sequences, train.labels), (test.sequences, test.labels))
    return splits, train.label_names


def _train(args) -> int:
    import keras
    import numpy as np

    from keras_seqrnn import atomic
    from keras_seqrnn import build_classifier
    from keras_seqrnn import data

    ((x_train, y_train), (x_test, y_test)), label_names = _load(args)
    features = x_train[0].shape[-1]
    if x_test[0].shape[-1] != features:
        raise DataError(
            f"{args.test_data}: {x_test[0].shape[-1]} features per step, "
            f"the training data has {features}."
        )
    keras.utils.set_random_seed(args.seed)
    highway = None if args.highway == "none" else args.highway
    model = build_classifier(
        features,
        len(label_names),
        units=args.units,
        num_layers=args.layers,
        highway=highway,
        seed=args.seed,
    )
    model.compile(
        keras.optimizers.Adam(args.lr),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=True,
    )
    train = data.bucketed_dataset(
        x_train, y_train, args.batch_size, shuffle=True, seed=args.seed
    )
    test = data.bucketed_dataset(x_test, y_test, args.batch_size)
    start = time.perf_counter()
    history = model.fit(
        train,
        epochs=args.epochs,
        shuffle=False,  # The dataset shuffles itself, seeded.
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(test, verbose=0)
    metrics = {
        "test_accuracy": float(test_accuracy),
        "train_accuracy": float(history.history["accuracy"][-1]),
        "train_seconds": round(train_seconds, 2),
        "train_sequences": len(x_train),
        "test_sequences": len(x_test),
        "num_parameters": int(model.count_params()),
        "label_names": list(label_names),
        "config": {
            key: str(value) if isinstance(value, pathlib.Path) else value
            for key, value in vars(args).items()
            if key not in ("run", "command")
        },
        "version": __version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.keras"
    with atomic.atomic_path(model_path) as tmp:
        model.save(tmp)
    with atomic.atomic_path(args.out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    rows = [
        ("data", args.data),
        ("model", f"{args.layers} x {args.units} units, highway={highway}"),
        ("parameters", f"{metrics['num_parameters']:,}"),
        ("train / test sequences", f"{len(x_train)} / {len(x_test)}"),
        ("train seconds", f"{train_seconds:.1f}"),
        ("train accuracy", f"{100 * metrics['train_accuracy']:.2f} %"),
        ("test accuracy", f"{100 * test_accuracy:.2f} %"),
        ("saved", f"{model_path} ({model_path.stat().st_size:,} bytes)"),
    ]
    print(_table(("", "value"), rows))
    return 0


def _table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in (0, 1)]
    lines = [f"| {header[0]:<{widths[0]}} | {header[1]:<{widths[1]}} |"]
    lines.append(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|")
    lines += [f"| {a:<{widths[0]}} | {b:<{widths[1]}} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs `seqrnn`; returns the exit status (2 for bad arguments)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    from keras_seqrnn.datasets import TsFormatError

    try:
        return args.run(args)
    except (DataError, TsFormatError, OSError) as error:
        print(f"seqrnn: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
