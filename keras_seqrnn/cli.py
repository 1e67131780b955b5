"""The `seqrnn` command line: train, evaluate, predict and export.

It parses arguments and prints; the work is the library's
(`keras_seqrnn.fit_classifier`, `keras_seqrnn.plan_training`,
`keras_seqrnn.datasets.load_dataset`, `export.to_tflite`).
"""

import argparse
import json
import os
import pathlib
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_seqrnn import atomic
from keras_seqrnn import data
from keras_seqrnn import datasets
from keras_seqrnn import recipe
from keras_seqrnn import saving
from keras_seqrnn import streaming
from keras_seqrnn import training
from keras_seqrnn import training_plan
from keras_seqrnn.highway_stacked_rnn import HIGHWAY_MODES
from keras_seqrnn.sequence_classifier import POOLINGS
from keras_seqrnn.sequence_classifier import SequenceClassifier
from keras_seqrnn.version import __version__

BUNDLED_DATA = ("japanese_vowels",)
# The JapaneseVowels files label the speakers 1 to 9.
JAPANESE_VOWELS_LABELS = tuple(str(k) for k in range(1, 10))
# Without --test-data, this share of each class of the training file is
# held out for the report.
TEST_SPLIT = 0.25
RUN = "run.json"
# `seqrnn train` options that are `TrainingPlan` fields, by option name.
PLAN_OPTIONS = {
    "frame_length": "frame_length",
    "units": "units",
    "layers": "num_layers",
    "highway": "highway",
    "bidirectional": "bidirectional",
    "pooling": "pooling",
    "dropout": "dropout",
    "input_noise": "input_noise",
    "random_crop": "random_crop",
    "label_smoothing": "label_smoothing",
    "weight_decay": "weight_decay",
    "lr": "learning_rate",
    "batch_size": "batch_size",
    "epochs": "epochs",
    "clip_norm": "clip_norm",
    "validation_split": "validation_split",
    "seed": "seed",
}


class DataError(ValueError):
    """Data or options that cannot be used: one line, exit code 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqrnn",
        description="Train, evaluate and use keras_seqrnn sequence "
        "classifiers.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    formatter = argparse.ArgumentDefaultsHelpFormatter

    train = commands.add_parser(
        "train",
        help="plan from the data, train a classifier, save it and report "
        "its test accuracy",
        description="Every training option defaults to what the plan "
        "derives from the training data (printed before training); give "
        "one to override it.",
    )
    _add_data_arguments(train)
    train.add_argument(
        "--out", required=True, type=pathlib.Path, help="output folder"
    )
    plan = train.add_argument_group("training plan (derived unless given)")
    plan.add_argument(
        "--frame-length",
        type=_positive_int,
        help="consecutive steps one recurrent step reads",
    )
    plan.add_argument("--units", type=_positive_int)
    plan.add_argument("--layers", type=_positive_int)
    plan.add_argument(
        "--highway",
        choices=[str(mode).lower() for mode in HIGHWAY_MODES],
        help="highway gates",
    )
    plan.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        help="a second stack reads each sequence backwards",
    )
    plan.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="what the output layer reads of the top layer's outputs: the "
        "last real step's, their mean, or both",
    )
    plan.add_argument("--epochs", type=_positive_int)
    plan.add_argument("--batch-size", type=_positive_int)
    plan.add_argument(
        "--lr", type=_positive_float, help="peak learning rate of AdamW "
        "(cosine decay to 0)"
    )
    plan.add_argument(
        "--clip-norm",
        type=_clip_norm,
        help="largest global gradient norm, or 'none'",
    )
    plan.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        help="decoupled weight decay of AdamW",
    )
    plan.add_argument(
        "--input-noise",
        type=_non_negative_float,
        help="standard deviation of the Gaussian noise on standardized "
        "inputs in training",
    )
    plan.add_argument(
        "--random-crop",
        type=_rate,
        help="largest fraction of a series an epoch's random crop removes",
    )
    plan.add_argument(
        "--dropout",
        type=_rate,
        help="dropout rate between stacked layers and before the output layer",
    )
    plan.add_argument(
        "--label-smoothing",
        type=_rate,
        help="probability of the training target spread over all classes",
    )
    plan.add_argument(
        "--validation-split",
        type=_rate,
        help="fraction of the training data held out to keep the epoch "
        "with the lowest validation loss",
    )
    plan.add_argument("--seed", type=int)
    train.add_argument(
        "--qat-epochs",
        type=_non_negative_int,
        default=0,
        help="epochs of quantization-aware fine-tuning after training; "
        "writes model_qat.keras for an int8 export",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out from its last checkpoint",
    )
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="print a model's accuracy and confusion matrix",
        formatter_class=formatter,
    )
    evaluate.add_argument("model", type=pathlib.Path, help="a .keras file")
    _add_data_arguments(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="print the predicted label of every sequence"
    )
    predict.add_argument(
        "model",
        type=pathlib.Path,
        help="a .keras file, or a .tflite file of `seqrnn export`",
    )
    predict.add_argument(
        "file", help="a UEA/UCR .ts or UCR .tsv file (labels optional in .ts)"
    )
    predict.add_argument(
        "--stream",
        nargs="?",
        const=1,
        type=_positive_int,
        metavar="K",
        help="replay each series as a stream, K samples at a time "
        "(default 1), and print when its prediction settles",
    )
    _add_missing_argument(predict)
    predict.set_defaults(run=_predict)

    export = commands.add_parser(
        "export",
        help="export a model to TFLite, verify it on LiteRT, print a report",
        formatter_class=formatter,
    )
    export.add_argument("model", type=pathlib.Path, help="a .keras file")
    export.add_argument(
        "--out",
        required=True,
        type=pathlib.Path,
        help="the .tflite file (with --all: a folder)",
    )
    export.add_argument(
        "--target", choices=("cpu", "gpu", "mobile"), default="cpu"
    )
    export.add_argument(
        "--quantization",
        choices=("none", "float16", "dynamic", "int8"),
        default="none",
    )
    export.add_argument(
        "--max-length",
        type=_positive_int,
        help="longest sequence of gpu/mobile models (default: the longest "
        "in the data)",
    )
    export.add_argument(
        "--batch-size",
        type=_positive_int,
        help="static batch of gpu/mobile models (default: 1)",
    )
    export.add_argument(
        "--io-type", choices=("float32", "int8"), default="float32"
    )
    export.add_argument(
        "--stream",
        type=_positive_int,
        metavar="K",
        help="add a `stream` signature that takes chunks of K samples "
        "(gpu/mobile: then the file holds it alone, any length, unless "
        "--max-length is given)",
    )
    export.add_argument(
        "--all",
        action="store_true",
        help="export every preset into --out and print one summary table",
    )
    export.add_argument(
        "--qat-model",
        type=pathlib.Path,
        help="with --all: also export this quantization-aware model "
        "(model_qat.keras of `seqrnn train --qat-epochs`) as int8",
    )
    export.add_argument(
        "--timeout",
        type=_positive_float,
        default=1800.0,
        help="seconds each conversion or LiteRT check may take",
    )
    _add_data_arguments(export)
    export.set_defaults(run=_export)
    return parser


def _add_data_arguments(parser):
    parser.add_argument(
        "--data",
        default="japanese_vowels",
        help="a bundled data set (japanese_vowels), or a UEA/UCR .ts or "
        "UCR .tsv training file",
    )
    parser.add_argument(
        "--test-data",
        help="the test file of a --data file (default: a stratified "
        f"{TEST_SPLIT:.0%} of --data held out)",
    )
    _add_missing_argument(parser)


def _add_missing_argument(parser):
    parser.add_argument(
        "--missing",
        choices=datasets.MISSING_POLICIES,
        default="error",
        help="missing values inside a series: an error naming them, linear "
        "interpolation, or the last value carried forward",
    )


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value is None or value <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        )
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, got {text!r}"
        )
    return value


def _positive_float(text: str) -> float:
    if not 0 < _float(text) < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number, got {text!r}"
        )
    return float(text)


def _non_negative_float(text: str) -> float:
    if not 0 <= _float(text) < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0, got {text!r}"
        )
    return float(text)


def _clip_norm(text: str) -> float | str:
    return "none" if text.lower() == "none" else _positive_float(text)


def _rate(text: str) -> float:
    if not 0 <= _float(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number in [0, 1), got {text!r}"
        )
    return float(text)


class _Split:
    """Labelled series of one split, with where they came from."""

    def __init__(self, sequences, labels, source):
        self.sequences = sequences
        self.labels = np.asarray(labels)
        self.source = source


def _load_splits(data_arg, test_data, missing):
    """`(train, test, label_names)`; without `test_data`, the test split is
    a stratified share of the training file."""
    if data_arg in BUNDLED_DATA:
        if test_data is not None:
            raise DataError(
                f"--test-data is for data files; {data_arg!r} is a bundled "
                "data set with its own test split."
            )
        (x_train, y_train), (x_test, y_test) = datasets.load_japanese_vowels()
        return (
            _Split(x_train, y_train, f"{data_arg} (train)"),
            _Split(x_test, y_test, f"{data_arg} (test)"),
            JAPANESE_VOWELS_LABELS,
        )
    train = _load_labelled(data_arg, missing)
    names = train.label_names
    if len(names) < 2:
        raise DataError(
            f"{data_arg}: every series has the class {names[0]!r}; a "
            "classifier needs at least two classes."
        )
    if test_data is None:
        (x_fit, y_fit), (x_test, y_test) = data.stratified_split(
            train.sequences, train.labels, TEST_SPLIT, seed=0
        )
        return (
            _Split(x_fit, y_fit, f"{data_arg} ({1 - TEST_SPLIT:.0%} of it)"),
            _Split(
                x_test, y_test,
                f"{data_arg} ({TEST_SPLIT:.0%} of it held out, stratified)",
            ),
            names,
        )
    test = _load_labelled(test_data, missing)
    _check_features(test, test_data, train.sequences[0].shape[-1],
                    "the training data has")
    return (
        _Split(train.sequences, train.labels, data_arg),
        _Split(
            test.sequences,
            _relabel(test, test_data, names, f"the training file {data_arg}"),
            test_data,
        ),
        names,
    )


def _relabel(dataset, path, names, owner):
    """The dataset's labels as indices into `names`; a class `names` lacks
    is an error naming its first series."""
    unseen = [n for n in dataset.label_names if n not in names]
    if unseen:
        index = dataset.label_names.index(unseen[0])
        case = int(np.flatnonzero(dataset.labels == index)[0]) + 1
        raise DataError(
            f"{path}: series {case} has the class {unseen[0]!r}, which "
            f"{owner} never shows (its classes: {', '.join(names)})."
        )
    relabel = np.array([list(names).index(n) for n in dataset.label_names])
    return relabel[dataset.labels]


def _check_features(dataset, path, features, owner):
    if dataset.sequences[0].shape[-1] != features:
        raise DataError(
            f"{path}: {dataset.sequences[0].shape[-1]} features per step, "
            f"{owner} {features}."
        )


def _load_labelled(path, missing):
    dataset = datasets.load_dataset(path, missing=missing)
    if dataset.labels is None:
        raise DataError(f"{path}: the file has no class labels.")
    return dataset


def _plan_overrides(args) -> dict:
    overrides = {}
    for option, field in PLAN_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            if option in ("highway", "clip_norm") and value == "none":
                value = None
            overrides[field] = value
    return overrides


def _train(args, argv) -> int:
    out = args.out
    strategy = _cluster_strategy()
    if args.resume and strategy is None:
        args = _resumed(args)
    train, test, label_names = _load_splits(
        args.data, args.test_data, args.missing
    )
    overrides = _plan_overrides(args)
    try:
        plan, reasons = training_plan.plan_training(
            train.sequences, train.labels, len(label_names), **overrides
        )
    except ValueError as error:
        raise DataError(str(error)) from None
    fingerprint = training_plan.DataFingerprint.of(
        train.sequences, train.labels, len(label_names)
    )
    try:
        recipe.check_training_data(
            train.sequences, train.labels, len(label_names), plan
        )
    except ValueError as error:
        raise DataError(f"{train.source}: {error}") from None
    plan_table = _plan_table(plan, reasons, fingerprint)
    if strategy is not None:
        return _train_on_cluster(
            args, strategy, plan, plan_table, train, test, label_names
        )
    print(plan_table, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    if not args.resume:
        run = {key: value for key, value in vars(args).items()
               if key not in ("run", "command", "resume", "out")}
        recipe.write_json(out / RUN, run)
    try:
        result = recipe.fit_classifier(
            train.sequences,
            train.labels,
            plan,
            label_names=label_names,
            checkpoint_dir=out,
            resume=args.resume,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    except KeyboardInterrupt:
        print(
            f"seqrnn: interrupted; continue with: seqrnn train --out {out} "
            "--resume",
            file=sys.stderr,
        )
        return 130
    except recipe.TrainingDivergedError as error:
        raise DataError(f"{error} No model was saved.") from None
    return _report(args, result, reasons, fingerprint, train, test, label_names)


def _plan_table(plan, reasons, fingerprint) -> str:
    counts = fingerprint.class_counts
    rows = [
        (
            "data",
            f"{fingerprint.num_series} series, {fingerprint.num_features} "
            f"feature(s), lengths {fingerprint.min_length}-"
            f"{fingerprint.max_length}, {fingerprint.num_classes} classes of "
            f"{min(counts)}-{max(counts)} series",
            "",
        )
    ]
    rows += [
        (name, str(value), reasons.get(name, ""))
        for name, value in plan.to_dict().items()
    ]
    return "training plan\n" + _table(("setting", "value", "why"), rows)


def _resumed(args):
    """The options of the run in `args.out`, checked against those given."""
    path = args.out / RUN
    if not path.is_file():
        raise DataError(f"{args.out}: no checkpoint to resume from.")
    saved = json.loads(path.read_text())
    defaults = vars(_parser().parse_args(["train", "--out", str(args.out)]))
    changed = sorted(
        key for key, value in saved.items()
        if getattr(args, key) not in (defaults[key], value)
    )
    if changed:
        raise DataError(
            f"--resume continues the run in {args.out} with its own "
            f"options; these differ from it: {', '.join(changed)}."
        )
    for key, value in saved.items():
        setattr(args, key, value)
    return args


def _train_on_cluster(args, strategy, plan, plan_table, train, test,
                      label_names) -> int:
    """`seqrnn train` on every worker of a TF_CONFIG cluster."""
    checkpoints = args.out / "checkpoints"
    if checkpoints.exists() and not args.resume:
        raise DataError(
            f"{checkpoints} holds the checkpoints of an earlier run: pass "
            "--resume to continue it, or choose another --out."
        )
    keras.utils.set_random_seed(plan.seed)
    with strategy.scope():
        model = recipe.new_classifier(
            plan, train.sequences, len(label_names), label_names
        )
    trainer = training.DistributedTrainer(
        model, strategy, checkpoint_dir=str(checkpoints)
    )
    if trainer.is_chief():
        print(plan_table, flush=True)
    start = time.perf_counter()
    history = trainer.fit(
        train.sequences,
        train.labels,
        plan.batch_size,
        plan.epochs,
        seed=plan.seed,
        random_crop=plan.random_crop,
        verbose=int(sys.stdout.isatty()),
    )
    if not trainer.is_chief():
        return 0
    # Evaluate and save a single-device copy: Keras' own loops need every
    # worker under MultiWorkerMirroredStrategy, and the others are done.
    local = SequenceClassifier.from_config(model.get_config())
    local.build((None, None, train.sequences[0].shape[-1]))
    local.set_weights(model.get_weights())
    local.compile(metrics=["accuracy"], clip_norm=plan.clip_norm)
    result = recipe.FitResult(local, plan, history, time.perf_counter() - start,
                              len(train.sequences), 0, plan.epochs)
    fingerprint = training_plan.DataFingerprint.of(
        train.sequences, train.labels, len(label_names)
    )
    return _report(args, result, {}, fingerprint, train, test, label_names)


def _cluster_strategy():
    """MultiWorkerMirroredStrategy where TF_CONFIG names a cluster."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError as error:
        raise DataError(f"TF_CONFIG is not valid JSON: {error}.") from None
    if not config.get("cluster"):
        return None
    return tf.distribute.MultiWorkerMirroredStrategy()


def _report(args, result, reasons, fingerprint, train, test,
            label_names) -> int:
    """Evaluates on the test split, writes the outputs, prints the table."""
    model, plan, history = result.model, result.plan, result.history
    x_padded, _ = data.pad(test.sequences)
    test_logs = model.evaluate(
        x_padded, test.labels, verbose=0, return_dict=True
    )
    metrics = {
        "test_accuracy": float(test_logs["accuracy"]),
        "test_loss": float(test_logs["loss"]),
        "train_accuracy": float(history[-1]["accuracy"]),
        "train_seconds": round(result.seconds, 2),
        "train_sequences": result.num_train,
        "validation_sequences": result.num_validation,
        "test_sequences": len(test.sequences),
        "best_epoch": result.best_epoch,
        "train_data": train.source,
        "test_data": test.source,
        "num_parameters": int(model.count_params()),
        "label_names": list(label_names),
        "data": fingerprint.to_dict(),
        "plan": plan.to_dict(),
        "plan_reasons": reasons,
        "version": __version__,
    }
    model_path = args.out / "model.keras"
    with atomic.atomic_path(model_path) as tmp:
        model.save(tmp)
    recipe.write_json(args.out / "history.json", history)
    qat_rows = []
    if args.qat_epochs:
        qat_rows = _quantization_aware(args, result, metrics, train, test)
    recipe.write_json(args.out / "metrics.json", metrics)
    rows = [
        ("train data", train.source),
        ("test data", test.source),
        (
            "model",
            f"{plan.num_layers} x {plan.units} units, highway={plan.highway}, "
            f"{'bidirectional' if plan.bidirectional else 'forward'}, "
            f"pooling={plan.pooling}, frame_length={plan.frame_length}",
        ),
        ("parameters", f"{metrics['num_parameters']:,}"),
        (
            "train / validation / test sequences",
            f"{result.num_train} / {result.num_validation} / "
            f"{len(test.sequences)}",
        ),
        ("train seconds", f"{result.seconds:.1f}"),
        ("kept epoch", f"{result.best_epoch} of {plan.epochs}"),
        ("train accuracy", f"{100 * metrics['train_accuracy']:.2f} %"),
        ("test accuracy", f"{100 * metrics['test_accuracy']:.2f} %"),
        ("saved", f"{model_path} ({model_path.stat().st_size:,} bytes)"),
        *qat_rows,
    ]
    print(_table(("", "value"), rows))
    return 0


def _quantization_aware(args, result, metrics, train, test):
    """Fine-tunes a quantization-aware copy; saves it; returns table rows."""
    start = time.perf_counter()
    qat = recipe.fit_quantization_aware(
        result.model, train.sequences, train.labels, result.plan,
        args.qat_epochs,
    )
    padded, _ = data.pad(test.sequences)
    logs = qat.evaluate(padded, test.labels, verbose=0, return_dict=True)
    metrics["qat_test_accuracy"] = float(logs["accuracy"])
    metrics["qat_seconds"] = round(time.perf_counter() - start, 2)
    path = args.out / "model_qat.keras"
    with atomic.atomic_path(path) as tmp:
        qat.save(tmp)
    return [
        (
            "quantization-aware",
            f"{args.qat_epochs} epochs, {metrics['qat_seconds']:.1f} s, "
            f"test accuracy {100 * metrics['qat_test_accuracy']:.2f} % "
            "(fake int8)",
        ),
        ("saved", f"{path} (export it with --quantization int8)"),
    ]




def _evaluate(args, argv) -> int:
    model = saving.load_classifier(args.model)
    names = model.label_names or [str(k) for k in range(model.num_classes)]
    if args.data in BUNDLED_DATA or args.test_data is not None:
        _, test, label_names = _load_splits(
            args.data, args.test_data, args.missing
        )
        x, labels = test.sequences, test.labels
        if list(label_names) != list(names):
            raise DataError(
                f"{args.data}: class labels {list(label_names)} differ from "
                f"the model's {list(names)}."
            )
    else:
        dataset = _load_labelled(args.data, args.missing)
        x = dataset.sequences
        labels = _relabel(dataset, args.data, names, "the model")
    _check_features(
        datasets.SequenceDataset(x, None, (), None),
        args.test_data or args.data,
        model.num_features,
        "the model takes",
    )
    padded, _ = data.pad(x)
    predicted = model.predict(padded, verbose=0).argmax(axis=-1)
    confusion = np.zeros((len(names), len(names)), int)
    np.add.at(confusion, (labels, predicted), 1)
    accuracy = float(np.mean(predicted == labels))
    print(f"accuracy: {100 * accuracy:.2f} % ({len(labels)} sequences)")
    print("confusion matrix (rows: true label, columns: predicted):")
    width = max(len(str(confusion.max())), *(len(n) for n in names))
    print(" " * width + " " + " ".join(f"{n:>{width}}" for n in names))
    for name, row in zip(names, confusion):
        print(f"{name:>{width}} " + " ".join(f"{v:>{width}}" for v in row))
    return 0


def _predict(args, argv) -> int:
    model = _load_predictor(args.model)
    dataset = datasets.load_dataset(args.file, missing=args.missing)
    _check_features(dataset, args.file, model.num_features, "the model takes")
    names = model.label_names or [str(k) for k in range(model.num_classes)]
    if args.stream is None:
        if isinstance(model, SequenceClassifier):
            padded, _ = data.pad(dataset.sequences)
            probabilities = model.predict(padded, verbose=0)
        else:
            probabilities = model.predict(dataset.sequences)
        print("\n".join(names[k] for k in np.argmax(probabilities, axis=-1)))
        return 0
    try:
        history = streaming.replay(model, dataset.sequences, args.stream)
    except ValueError as error:
        raise DataError(f"{args.model}: {error}") from None
    for i, (sequence, steps) in enumerate(zip(dataset.sequences, history)):
        label = names[int(steps[-1].argmax())]
        at = min((streaming.settled(steps) + 1) * args.stream, len(sequence))
        print(
            f"{i}\t{label}\tsettled after {at} of {len(sequence)} samples "
            f"({at / len(sequence):.0%}), p={steps[-1].max():.2f}"
        )
    return 0


def _load_predictor(path):
    if path.suffix != ".tflite":
        return saving.load_classifier(path)
    import export as export_lib

    try:
        return export_lib.LiteRTModel(path)
    except export_lib.TFLiteFileError as error:
        raise DataError(str(error)) from None


def _export(args, argv) -> int:
    # Imported here: the export package is not the training's concern.
    import export as export_lib

    if not hasattr(export_lib, "to_tflite"):
        origin = getattr(export_lib, "__file__", None) or "a folder `export`"
        raise DataError(
            f"{origin} shadows keras_seqrnn's export package: "
            "rename it or run from another folder."
        )
    try:
        return _export_model(export_lib, args)
    except (ValueError, export_lib.ExportError) as error:
        raise DataError(str(error)) from None


def _export_model(export_lib, args) -> int:
    model = saving.load_classifier(args.model)
    train, test, _ = _load_splits(args.data, args.test_data, args.missing)
    max_length = args.max_length or max(
        len(s) for split in (train, test) for s in split.sequences
    )
    common = {
        "representative_data": train.sequences,
        "verification_data": (test.sequences, test.labels),
        "timeout": args.timeout,
    }
    if not args.all:
        unrolled = args.target != "cpu"
        if args.stream is not None and args.max_length is None:
            max_length = None
        report = export_lib.to_tflite(
            model,
            args.out,
            args.target,
            None if args.quantization == "none" else args.quantization,
            max_length=max_length if unrolled else None,
            batch_size=args.batch_size,
            io_type=args.io_type,
            stream=args.stream,
            latency_runs=200,
            **common,
        )
        print(report.table())
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [_keras_row(model, args.model, test)]
    reports = {}
    for name in export_lib.PRESETS:
        config = export_lib.ExportConfig.preset(
            name,
            **({} if name.startswith("cpu") else {"max_length": max_length}),
        )
        report = export_lib.to_tflite(
            model,
            args.out / f"{name}.tflite",
            config,
            latency_runs=200,
            **common,
        )
        reports[name] = report.to_dict()
        rows.append(_summary_row(config, report))
    if args.qat_model is not None:
        config = export_lib.ExportConfig.preset(
            "mobile-int8", max_length=max_length
        )
        report = export_lib.to_tflite(
            saving.load_classifier(args.qat_model),
            args.out / "mobile-int8-qat.tflite",
            config,
            verification_data=common["verification_data"],
            latency_runs=200,
            timeout=args.timeout,
        )
        reports["mobile-int8-qat"] = report.to_dict()
        rows.append(_summary_row(config, report, "int8 (QAT)"))
    recipe.write_json(args.out / "export.json", reports)
    print(
        _table(
            (
                "target",
                "quantization",
                "size",
                "test accuracy",
                "agreement with Keras",
                "max prob. error",
                "batch-1 latency",
            ),
            rows,
        )
    )
    gpu = reports["gpu"]["gpu"]
    if "error" in gpu:
        print(f"GPU accelerator: {gpu['error']}")
    else:
        print(
            "gpu model on the LiteRT GPU accelerator: fully accelerated "
            f"{gpu['fully_accelerated']}, top-1 agreement with Keras "
            f"{100 * gpu['agreement']:.2f} %, max prob. error "
            f"{gpu['max_abs_diff']:.1e}, batch-1 latency "
            f"{gpu['latency'] * 1e6:.0f} us (software Vulkan is slow)"
        )
    return 0


def _summary_row(config, report, quantization=None):
    return (
        config.target,
        quantization or config.quantization or "float32",
        f"{report.size / 1024:.1f} KiB",
        f"{100 * report.accuracy:.2f} %",
        f"{100 * report.agreement:.2f} %",
        f"{report.max_abs_diff:.1e}",
        f"{report.latency * 1e6:.0f} us",
    )


def _keras_row(model, path, test):
    from export.litert_model import median_seconds

    x, y = test.sequences, test.labels
    padded, _ = data.pad(x)
    probabilities = np.asarray(model.predict_on_batch(padded))
    accuracy = float(np.mean(probabilities.argmax(-1) == y))
    one = padded[np.argmax([len(s) for s in x])][None]
    latency = median_seconds(lambda: model.predict_on_batch(one), 50, 10)
    return (
        "keras",
        "float32",
        f"{path.stat().st_size / 1024:.1f} KiB",
        f"{100 * accuracy:.2f} %",
        "-",
        "-",
        f"{latency * 1e6:.0f} us (predict_on_batch)",
    )


def _table(header, rows) -> str:
    columns = range(len(header))
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in columns]

    def line(row):
        return "| " + " | ".join(
            f"{str(v):<{widths[i]}}" for i, v in enumerate(row)
        ) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    """Runs `seqrnn`; returns the exit status (2 for bad arguments)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)

    try:
        return args.run(args, argv)
    except (
        DataError,
        datasets.DataFormatError,
        saving.ModelFileError,
        OSError,
    ) as error:
        print(f"seqrnn: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
