"""The `seqrnn` command line: train, evaluate and predict."""

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
from keras_seqrnn import training
from keras_seqrnn.sequence_classifier import POOLINGS
from keras_seqrnn.sequence_classifier import SequenceClassifier
from keras_seqrnn.sequence_classifier import build_classifier
from keras_seqrnn.version import __version__

BUNDLED_DATA = ("japanese_vowels",)
# The JapaneseVowels files label the speakers 1 to 9.
JAPANESE_VOWELS_LABELS = tuple(str(k) for k in range(1, 10))
HIGHWAY_CHOICES = ("depth", "time", "both", "none")
CHECKPOINT = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"


class DataError(ValueError):
    """Data or options that cannot be used: one line, exit code 1."""


def _parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    default = (lambda value: argparse.SUPPRESS) if suppress_defaults else (
        lambda value: value
    )
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
        help="train a classifier, save it and report its test accuracy",
        formatter_class=formatter,
    )
    _add_data_arguments(train, default)
    train.add_argument(
        "--out", required=True, type=pathlib.Path, help="output folder"
    )
    train.add_argument("--units", type=_positive_int, default=default(64))
    train.add_argument("--layers", type=_positive_int, default=default(2))
    train.add_argument(
        "--highway",
        choices=HIGHWAY_CHOICES,
        default=default("none"),
        help="highway gates; at 2 layers they do not pay on JapaneseVowels "
        "(see the README's Results)",
    )
    train.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=default(True),
        help="a second stack reads each sequence backwards",
    )
    train.add_argument(
        "--pooling",
        choices=POOLINGS,
        default=default("last_mean"),
        help="what the output layer reads of the top layer's outputs: the "
        "last real step's, their mean, or both",
    )
    train.add_argument("--epochs", type=_positive_int, default=default(60))
    train.add_argument(
        "--batch-size", type=_positive_int, default=default(16)
    )
    train.add_argument(
        "--lr",
        type=_positive_float,
        default=default(3e-3),
        help="peak learning rate of Adam (cosine decay to 0)",
    )
    train.add_argument(
        "--clip-norm",
        type=_clip_norm,
        default=default(1.0),
        help="largest global gradient norm, or 'none'",
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative_float,
        default=default(0.01),
        help="decoupled weight decay of AdamW",
    )
    train.add_argument(
        "--input-noise",
        type=_non_negative_float,
        default=default(0.0),
        help="standard deviation of the Gaussian noise on standardized "
        "inputs in training",
    )
    train.add_argument(
        "--dropout",
        type=_rate,
        default=default(0.1),
        help="dropout rate between stacked layers and before the output layer",
    )
    train.add_argument(
        "--label-smoothing",
        type=_rate,
        default=default(0.1),
        help="probability of the training target spread over all classes",
    )
    train.add_argument(
        "--validation-split",
        type=_rate,
        default=default(0.0),
        help="fraction of the training data held out for validation",
    )
    train.add_argument(
        "--qat-epochs",
        type=_non_negative_int,
        default=default(0),
        help="epochs of quantization-aware fine-tuning after training; "
        "writes model_qat.keras for an int8 export",
    )
    train.add_argument("--seed", type=int, default=default(0))
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
    _add_data_arguments(evaluate, default)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="print the predicted label of every sequence"
    )
    predict.add_argument("model", type=pathlib.Path, help="a .keras file")
    predict.add_argument("file", help="a UEA/UCR .ts file (labels optional)")
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
        "--target", choices=("cpu", "gpu", "mobile"), default=default("cpu")
    )
    export.add_argument(
        "--quantization",
        choices=("none", "float16", "dynamic", "int8"),
        default=default("none"),
    )
    export.add_argument(
        "--max-length",
        type=_positive_int,
        default=default(None),
        help="longest sequence of gpu/mobile models (default: the longest "
        "in the data)",
    )
    export.add_argument(
        "--batch-size",
        type=_positive_int,
        default=default(None),
        help="static batch of gpu/mobile models (default: 1)",
    )
    export.add_argument(
        "--io-type", choices=("float32", "int8"), default=default("float32")
    )
    export.add_argument(
        "--all",
        action="store_true",
        help="export every preset into --out and print one summary table",
    )
    export.add_argument(
        "--qat-model",
        type=pathlib.Path,
        default=default(None),
        help="with --all: also export this quantization-aware model "
        "(model_qat.keras of `seqrnn train --qat-epochs`) as int8",
    )
    _add_data_arguments(export, default)
    export.set_defaults(run=_export)
    return parser


def _add_data_arguments(parser, default):
    parser.add_argument(
        "--data",
        default=default("japanese_vowels"),
        help="a bundled data set (japanese_vowels) or a UEA/UCR .ts "
        "training file",
    )
    parser.add_argument(
        "--test-data",
        default=default(None),
        help="the .ts test file, with a .ts --data file",
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


def _clip_norm(text: str) -> float | None:
    return None if text.lower() == "none" else _positive_float(text)


def _rate(text: str) -> float:
    if not 0 <= _float(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number in [0, 1), got {text!r}"
        )
    return float(text)


def _load_splits(data, test_data):
    """`((x_train, y_train), (x_test, y_test)), label_names`."""

    if data in BUNDLED_DATA:
        if test_data is not None:
            raise DataError(
                f"--test-data is only for .ts files; {data!r} is a bundled "
                "data set with its own test split."
            )
        return datasets.load_japanese_vowels(), JAPANESE_VOWELS_LABELS
    if test_data is None:
        raise DataError(
            f"--data {data!r} is a file: give its test file with --test-data."
        )
    train = _load_labelled(data)
    test = _load_labelled(test_data)
    if test.label_names != train.label_names:
        raise DataError(
            f"{test_data}: class labels {list(test.label_names)} differ from "
            f"the training file's {list(train.label_names)}."
        )
    splits = ((train.sequences, train.labels), (test.sequences, test.labels))
    return splits, train.label_names


def _load_labelled(path):
    dataset = datasets.load_ts(path)
    if dataset.labels is None:
        raise DataError(f"{path}: the file has no class labels.")
    return dataset


def _explicit_options(argv) -> set[str]:
    return set(vars(_parser(suppress_defaults=True).parse_args(argv)))


def _train(args, argv) -> int:
    out = args.out
    history = []
    initial_epoch = 0
    strategy = _cluster_strategy()
    random_states = None
    if args.resume and strategy is None:
        args, history, initial_epoch, random_states = _resume_state(args, argv)
    ((x_train, y_train), (x_test, y_test)), label_names = _load_splits(
        args.data, args.test_data
    )
    features = x_train[0].shape[-1]
    if x_test[0].shape[-1] != features:
        raise DataError(
            f"{args.test_data}: {x_test[0].shape[-1]} features per step, the "
            f"training data has {features}."
        )
    (x_fit, y_fit), validation = _split(
        x_train, y_train, args.validation_split, args.seed
    )
    if strategy is not None:
        splits = ((x_fit, y_fit), validation, (x_test, y_test))
        return _train_on_cluster(args, strategy, splits, label_names)
    keras.utils.set_random_seed(args.seed)
    if args.resume:
        model = keras.saving.load_model(out / CHECKPOINT)
        for variable, value in zip(
            _random_states(model), random_states, strict=True
        ):
            variable.assign(value)
    else:
        model = _new_model(args, x_fit, y_fit, features, label_names)
    # One batch shape (XLA compiles once), batches grouped by length (the
    # layers stop after each batch's longest sequence).
    held_out = [] if validation is None else list(validation[0])
    longest = max(len(sequence) for sequence in [*x_fit, *held_out])
    bucketing = {"pad_to_length": longest}
    train, steps = data.epochs_dataset(
        x_fit,
        y_fit,
        args.batch_size,
        epochs=args.epochs,
        initial_epoch=initial_epoch,
        seed=args.seed,
        **bucketing,
    )
    validation_data = None
    if validation is not None:
        validation_data = data.bucketed_dataset(
            *validation, args.batch_size, **bucketing
        )
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = _Checkpoint(out, _config(args), history)
    try:
        model.fit(
            train,
            epochs=args.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            validation_data=validation_data,
            callbacks=_callbacks(checkpoint),
            shuffle=False,  # The dataset shuffles itself, seeded.
            verbose=1 if sys.stdout.isatty() else 2,
        )
    except KeyboardInterrupt:
        print(
            f"seqrnn: interrupted after epoch {len(checkpoint.history)}; "
            f"continue with: seqrnn train --out {out} --resume",
            file=sys.stderr,
        )
        return 130
    return _report(args, model, checkpoint.history, checkpoint.seconds,
                   (x_fit, y_fit), validation, (x_test, y_test), label_names)


def _train_on_cluster(args, strategy, splits, label_names) -> int:
    """`seqrnn train` on every worker of a TF_CONFIG cluster."""
    (x_fit, y_fit), validation, (x_test, y_test) = splits
    checkpoints = args.out / "checkpoints"
    if checkpoints.exists() and not args.resume:
        raise DataError(
            f"{checkpoints} holds the checkpoints of an earlier run: pass "
            "--resume to continue it, or choose another --out."
        )
    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        model = _new_model(
            args, x_fit, y_fit, x_fit[0].shape[-1], label_names
        )
    trainer = training.DistributedTrainer(
        model, strategy, checkpoint_dir=str(checkpoints)
    )
    start = time.perf_counter()
    history = trainer.fit(
        x_fit,
        y_fit,
        args.batch_size,
        args.epochs,
        seed=args.seed,
        verbose=int(sys.stdout.isatty()),
    )
    if not trainer.is_chief():
        return 0
    # Evaluate and save a single-device copy: Keras' own loops need every
    # worker under MultiWorkerMirroredStrategy, and the others are done.
    local = SequenceClassifier.from_config(model.get_config())
    local.build((None, None, x_fit[0].shape[-1]))
    local.set_weights(model.get_weights())
    local.compile(metrics=["accuracy"], clip_norm=args.clip_norm)
    return _report(args, local, history, time.perf_counter() - start,
                   (x_fit, y_fit), validation, (x_test, y_test), label_names)


def _cluster_strategy():
    """MultiWorkerMirroredStrategy where TF_CONFIG names a cluster."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except json.JSONDecodeError as error:
        raise DataError(f"TF_CONFIG is not valid JSON: {error}.") from None
    if not config.get("cluster"):
        return None
    return tf.distribute.MultiWorkerMirroredStrategy()


def _report(args, model, history, train_seconds, fit_data, validation,
            test, label_names) -> int:
    """Evaluates on the test split, writes the outputs, prints the table."""
    x_test, y_test = test
    train_count = len(fit_data[0])
    x_padded, _ = data.pad(x_test, value=model.mask_value)
    test_logs = model.evaluate(x_padded, y_test, verbose=0, return_dict=True)
    metrics = {
        "test_accuracy": float(test_logs["accuracy"]),
        "test_loss": float(test_logs["loss"]),
        "train_accuracy": float(history[-1]["accuracy"]),
        "train_seconds": round(train_seconds, 2),
        "train_sequences": train_count,
        "validation_sequences": 0 if validation is None else len(validation[0]),
        "test_sequences": len(x_test),
        "num_parameters": int(model.count_params()),
        "label_names": list(label_names),
        "config": _config(args),
        "version": __version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.keras"
    with atomic.atomic_path(model_path) as tmp:
        model.save(tmp)
    _write_json(args.out / "history.json", history)
    qat_rows = []
    if getattr(args, "qat_epochs", 0):
        qat_rows = _quantization_aware(args, model, metrics, fit_data, test)
    _write_json(args.out / "metrics.json", metrics)
    highway = None if args.highway == "none" else args.highway
    rows = [
        ("data", args.data),
        (
            "model",
            f"{args.layers} x {args.units} units, highway={highway}, "
            f"{'bidirectional' if args.bidirectional else 'forward'}, "
            f"pooling={args.pooling}",
        ),
        ("parameters", f"{metrics['num_parameters']:,}"),
        ("train / test sequences", f"{train_count} / {len(x_test)}"),
        ("train seconds", f"{train_seconds:.1f}"),
        ("train accuracy", f"{100 * metrics['train_accuracy']:.2f} %"),
        ("test accuracy", f"{100 * metrics['test_accuracy']:.2f} %"),
        ("saved", f"{model_path} ({model_path.stat().st_size:,} bytes)"),
        *qat_rows,
    ]
    print(_table(("", "value"), rows))
    return 0


def _quantization_aware(args, model, metrics, fit_data, test):
    """Fine-tunes a quantization-aware copy; saves it; returns table rows."""
    from keras_seqrnn.quantization_aware_classifier import quantize_aware

    x_fit, y_fit = fit_data
    padded, _ = data.pad(x_fit, value=model.mask_value)
    qat = quantize_aware(model, calibration_data=padded)
    qat.compile(
        keras.optimizers.Adam(args.lr / 10),
        metrics=["accuracy"],
        clip_norm=args.clip_norm,
        label_smoothing=args.label_smoothing,
    )
    start = time.perf_counter()
    qat.fit(
        padded,
        np.asarray(y_fit),
        batch_size=args.batch_size,
        epochs=args.qat_epochs,
        verbose=0,
    )
    x_test, y_test = test
    test_padded, _ = data.pad(x_test, value=model.mask_value)
    logs = qat.evaluate(test_padded, y_test, verbose=0, return_dict=True)
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


def _new_model(args, x_fit, y_fit, features, label_names):
    mean, variance = data.feature_statistics(x_fit)
    model = build_classifier(
        features,
        len(label_names),
        units=args.units,
        num_layers=args.layers,
        highway=None if args.highway == "none" else args.highway,
        bidirectional=args.bidirectional,
        pooling=args.pooling,
        feature_mean=mean,
        feature_variance=variance,
        dropout=args.dropout,
        input_noise=args.input_noise,
        label_names=label_names,
        seed=args.seed,
    )
    steps = int(
        data.bucketed_dataset(x_fit, y_fit, args.batch_size).cardinality()
    )
    schedule = keras.optimizers.schedules.CosineDecay(
        args.lr, decay_steps=max(args.epochs * steps, 1)
    )
    model.compile(
        keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay),
        metrics=["accuracy"],
        clip_norm=args.clip_norm,
        label_smoothing=args.label_smoothing,
        steps_per_execution=_steps_per_execution(steps),
    )
    return model


def _steps_per_execution(steps: int, largest: int = 16) -> int:
    """The largest divisor of `steps` up to `largest`.

    Fewer, larger calls: Keras' per-step overhead outweighs a small model's
    step (benchmarks/train_throughput.py). It must divide the epoch: Keras
    3.15 counts every call as `steps_per_execution` steps, so a remainder
    makes it stop the last epochs early and restart the data ("Your input
    ran out of data").
    """
    return max(d for d in range(1, min(steps, largest) + 1) if steps % d == 0)


def _split(x, y, fraction, seed):
    """Holds out `fraction` of each class, seeded."""

    if not fraction:
        return (x, y), None
    rng = np.random.default_rng(seed)
    held_out = np.zeros(len(y), bool)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        held_out[members[: int(round(fraction * len(members)))]] = True
    if held_out.all() or not held_out.any():
        raise DataError(
            f"--validation-split {fraction} leaves no sequence to "
            f"{'train on' if held_out.all() else 'validate on'}."
        )
    keep, hold = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    return ([x[i] for i in keep], y[keep]), ([x[i] for i in hold], y[hold])


def _config(args) -> dict:
    return {
        key: str(value) if isinstance(value, pathlib.Path) else value
        for key, value in vars(args).items()
        if key not in ("run", "command", "resume", "out")
    }


def _resume_state(args, argv):
    state_path = args.out / CHECKPOINT_STATE
    if not state_path.exists() or not (args.out / CHECKPOINT).exists():
        raise DataError(f"{args.out}: no checkpoint to resume from.")
    state = json.loads(state_path.read_text())
    saved = state["config"]
    given = _explicit_options(argv) - {"command", "out", "resume", "run"}
    changed = sorted(
        key for key in given if getattr(args, key) != saved.get(key)
    )
    if changed:
        raise DataError(
            f"--resume continues the run in {args.out} with its own "
            f"options; these differ from it: {', '.join(changed)}."
        )
    for key, value in saved.items():
        setattr(args, key, value)
    if state["epoch"] >= args.epochs:
        raise DataError(
            f"{args.out}: the run already finished its {args.epochs} epochs."
        )
    return args, state["history"], state["epoch"], state["random_states"]


def _random_states(model):
    """The states of the model's seed generators, which draw the dropout
    masks: a `.keras` file leaves them out, and a resumed run must draw the
    masks of an uninterrupted one."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _callbacks(checkpoint):
    return [keras.callbacks.TerminateOnNaN(), checkpoint]


class _Checkpoint(keras.callbacks.Callback):
    """Saves the model, the epoch and the history after every epoch."""

    def __init__(self, out, config, history):
        super().__init__()
        self.out = out
        self.config = config
        self.history = list(history)
        self.seconds = history[-1]["seconds"] if history else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.started
        entry = {"epoch": epoch + 1, **_floats(logs)}
        entry["seconds"] = round(self.seconds, 3)
        self.history.append(entry)
        with atomic.atomic_path(self.out / CHECKPOINT) as tmp:
            self.model.save(tmp)
        _write_json(
            self.out / CHECKPOINT_STATE,
            {
                "epoch": epoch + 1,
                "config": self.config,
                "history": self.history,
                "random_states": [
                    v.numpy().tolist() for v in _random_states(self.model)
                ],
            },
        )


def _floats(logs):
    return {key: float(value) for key, value in (logs or {}).items()}


def _write_json(path, value):
    with atomic.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")


def _load_model(path):
    if not path.is_file():
        raise DataError(f"{path}: no such model file.")
    model = keras.saving.load_model(path)
    if not isinstance(model, SequenceClassifier):
        raise DataError(f"{path}: not a keras_seqrnn SequenceClassifier.")
    return model


def _evaluate(args, argv) -> int:
    model = _load_model(args.model)
    if args.data in BUNDLED_DATA or args.test_data is not None:
        (_, (x, y)), label_names = _load_splits(args.data, args.test_data)
    else:
        dataset = _load_labelled(args.data)
        x, y, label_names = dataset.sequences, dataset.labels, dataset.label_names
    names = model.label_names or [str(k) for k in range(model.num_classes)]
    if list(label_names) != list(names):
        raise DataError(
            f"{args.test_data or args.data}: class labels "
            f"{list(label_names)} differ from the model's {list(names)}."
        )
    padded, _ = data.pad(x, value=model.mask_value)
    predicted = model.predict(padded, verbose=0).argmax(axis=-1)
    labels = np.asarray(y)
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
    model = _load_model(args.model)
    dataset = datasets.load_ts(args.file)
    if dataset.sequences[0].shape[-1] != model.num_features:
        raise DataError(
            f"{args.file}: {dataset.sequences[0].shape[-1]} features per "
            f"step, the model takes {model.num_features}."
        )
    names = model.label_names or [str(k) for k in range(model.num_classes)]
    padded, _ = data.pad(dataset.sequences, value=model.mask_value)
    predicted = np.argmax(model.predict(padded, verbose=0), axis=-1)
    print("\n".join(names[k] for k in predicted))
    return 0


def _export(args, argv) -> int:
    # Imported here: the export package is not the training's concern.
    import export as export_lib

    try:
        return _export_model(export_lib, args)
    except (ValueError, export_lib.ExportError) as error:
        raise DataError(str(error)) from None


def _export_model(export_lib, args) -> int:
    model = _load_model(args.model)
    (train, test), _ = _load_splits(args.data, args.test_data)
    max_length = args.max_length or max(
        len(s) for split in (train, test) for s in split[0]
    )
    common = {
        "representative_data": train[0],
        "verification_data": (test[0], np.asarray(test[1])),
    }
    if not args.all:
        unrolled = args.target != "cpu"
        report = export_lib.to_tflite(
            model,
            args.out,
            args.target,
            None if args.quantization == "none" else args.quantization,
            max_length=max_length if unrolled else None,
            batch_size=args.batch_size,
            io_type=args.io_type,
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
            _load_model(args.qat_model),
            args.out / "mobile-int8-qat.tflite",
            config,
            verification_data=common["verification_data"],
            latency_runs=200,
        )
        reports["mobile-int8-qat"] = report.to_dict()
        rows.append(_summary_row(config, report, "int8 (QAT)"))
    _write_json(args.out / "export.json", reports)
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

    x, y = test
    padded, _ = data.pad(x, value=model.mask_value)
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
    except (DataError, datasets.TsFormatError, OSError) as error:
        print(f"seqrnn: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
