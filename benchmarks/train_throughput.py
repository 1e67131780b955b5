"""Training throughput: keras_seqrnn against Keras' SimpleRNN + fit.

JapaneseVowels-shaped data (lengths 7 to 29, padded to T = 29, 12 features,
9 classes), batch 64, masking on. Every contestant trains with `fit`: Keras'
SimpleRNN on the padded arrays (zero padding, which its `Masking` layer
masks), keras_seqrnn on the same arrays (NaN padding, its own) and as
`seqrnn train` feeds it (`keras_seqrnn.data.epochs_dataset` with
`pad_to_length`: batches grouped by length in one shape, one call per
epoch; its loop stops after each batch's longest sequence, which Keras'
does not). The `seqrnn train` default model (both directions, 2 layers,
last + mean pooling) runs against its Keras equivalent,
`Bidirectional(SimpleRNN)` x 2 with the same pooling, under XLA with one
call per epoch. Each epoch is timed by a callback; the first (XLA
compilation) is dropped and the median of the others counts, so neither
compilation nor the start-up of `fit` enters the numbers. The contestants
take turns over `--rounds` rounds, so that a slow spell of a shared machine
does not fall on one of them alone.

    python benchmarks/train_throughput.py [--sequences 8192] [--epochs 4] [--rounds 3]

Prints a table and writes benchmarks/results/train_throughput.json.
"""

import argparse
import json
import os
import pathlib
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_seqrnn  # noqa: E402

FEATURES, CLASSES, TIME, BATCH = 12, 9, 29, 64
EPOCH_STEPS = 128  # set from --sequences in main
SIMPLE_DEFAULT = "keras SimpleRNN + fit (default)"
SIMPLE_JIT = "keras SimpleRNN + fit (jit_compile=True)"
OURS_SAME_INPUT = "keras_seqrnn, 1 layer, highway=None"
OURS_GROUPED = (
    "keras_seqrnn, 1 layer, highway=None, grouped by length, one call per epoch"
)
KERAS_DEFAULT_SHAPE = (
    "keras Bidirectional(SimpleRNN) x 2, last + mean (jit_compile=True, one "
    "call per epoch)"
)
OURS_DEFAULT = (
    "keras_seqrnn, the seqrnn train default (both directions, 2 layers, "
    "last + mean), grouped, one call per epoch"
)


def japanese_vowels_shaped(count, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(7, TIME + 1, size=count)
    sequences = [rng.normal(size=(n, FEATURES)).astype("float32") for n in lengths]
    labels = rng.integers(0, CLASSES, size=count)
    return sequences, labels


def _compiled(model, jit_compile, steps_per_execution):
    """A Keras contestant compiled as every Keras contestant is."""
    model.compile(
        keras.optimizers.Adam(1e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def keras_simple_rnn(layers, jit_compile, steps_per_execution=1):
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking()(inputs)
    for i in range(layers):
        x = keras.layers.SimpleRNN(64, return_sequences=i < layers - 1)(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x))
    return _compiled(model, jit_compile, steps_per_execution)


def keras_bidirectional_last_mean(steps_per_execution):
    """Keras' equivalent of the `seqrnn train` default: two layers read in
    both directions, the last output of each direction and the mean of the
    last layer's outputs pooled."""
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking()(inputs)
    x = keras.layers.Bidirectional(keras.layers.SimpleRNN(64, return_sequences=True))(x)
    x, forward, backward = keras.layers.Bidirectional(
        keras.layers.SimpleRNN(64, return_sequences=True, return_state=True)
    )(x)
    pooled = keras.layers.Concatenate()(
        [forward, backward, keras.layers.GlobalAveragePooling1D()(x)]
    )
    model = keras.Model(
        inputs, keras.layers.Dense(CLASSES, activation="softmax")(pooled)
    )
    return _compiled(model, True, steps_per_execution)


def ours(layers, highway, steps_per_execution=1, **kwargs):
    model = keras_seqrnn.build_classifier(
        FEATURES, CLASSES, units=64, num_layers=layers, highway=highway, **kwargs
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        metrics=["accuracy"],
        clip_norm=1.0,
        steps_per_execution=steps_per_execution,
    )
    return model


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def epoch_seconds(model, fit_args, epochs):
    timer = EpochTimer()
    model.fit(**fit_args, epochs=epochs, callbacks=[timer], verbose=0)
    return timer.seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=4, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).parent / "results" / "train_throughput.json",
    )
    args = parser.parse_args()
    sequences, labels = japanese_vowels_shaped(args.sequences)
    global EPOCH_STEPS
    EPOCH_STEPS = -(-args.sequences // BATCH)
    # Each model's own padding: zeros for Keras' Masking layer, NaN for ours.
    keras_arrays, arrays = (
        {
            "x": keras_seqrnn.data.pad(sequences, TIME, value=value)[0],
            "y": labels, "batch_size": BATCH, "shuffle": True,
        }
        for value in (0.0, np.nan)
    )
    # As `seqrnn train` feeds it: batches grouped by length, one shape.
    grouped, grouped_steps = keras_seqrnn.data.epochs_dataset(
        sequences, labels, BATCH, epochs=args.epochs, pad_to_length=TIME
    )
    grouped = {"x": grouped, "steps_per_epoch": grouped_steps, "shuffle": False}
    epoch = EPOCH_STEPS
    contestants = [
        (SIMPLE_DEFAULT, lambda: keras_simple_rnn(1, "auto"), keras_arrays),
        (SIMPLE_JIT, lambda: keras_simple_rnn(1, True), keras_arrays),
        ("keras SimpleRNN + fit (jit_compile=True, one call per epoch)",
         lambda: keras_simple_rnn(1, True, epoch), keras_arrays),
        (OURS_SAME_INPUT, lambda: ours(1, None), arrays),
        ("keras_seqrnn, 1 layer, highway=None, one call per epoch",
         lambda: ours(1, None, epoch), arrays),
        (OURS_GROUPED, lambda: ours(1, None, grouped_steps), grouped),
        ("keras SimpleRNN x 4 + fit (jit_compile=True)",
         lambda: keras_simple_rnn(4, True), keras_arrays),
        ("keras_seqrnn, 4 layers, highway=depth, grouped, one call per epoch",
         lambda: ours(4, "depth", grouped_steps), grouped),
        ("keras_seqrnn, 4 layers, highway=both, grouped, one call per epoch",
         lambda: ours(4, "both", grouped_steps), grouped),
        (KERAS_DEFAULT_SHAPE, lambda: keras_bidirectional_last_mean(epoch),
         keras_arrays),
        (OURS_DEFAULT, lambda: ours(2, None, grouped_steps, bidirectional=True,
                                    pooling="last_mean"), grouped),
    ]
    models = []
    for _, make, fit_args in contestants:
        keras.utils.set_random_seed(0)
        model = make()
        model.fit(**fit_args, epochs=1, verbose=0)  # Compiles.
        models.append(model)
    seconds = [[] for _ in contestants]
    for _ in range(args.rounds):
        for times, model, (_, _, fit_args) in zip(seconds, models, contestants):
            times.extend(epoch_seconds(model, fit_args, args.epochs))
    rows = []
    for (name, _, _), times in zip(contestants, seconds):
        speed = args.sequences / float(np.median(times))
        rows.append({"name": name, "sequences_per_second": round(speed, 1)})
        print(f"{name}: {speed:,.0f} sequences/s", flush=True)
    by_name = {row["name"]: row["sequences_per_second"] for row in rows}
    default, jit = by_name[SIMPLE_DEFAULT], by_name[SIMPLE_JIT]
    ratios = {
        "vs_simple_rnn_default": round(by_name[OURS_GROUPED] / default, 2),
        "vs_simple_rnn_jit": round(by_name[OURS_GROUPED] / jit, 2),
        "same_input_vs_simple_rnn_default": round(
            by_name[OURS_SAME_INPUT] / default, 2
        ),
        "same_input_vs_simple_rnn_jit": round(by_name[OURS_SAME_INPUT] / jit, 2),
        "default_model_vs_keras_equivalent": round(
            by_name[OURS_DEFAULT] / by_name[KERAS_DEFAULT_SHAPE], 2
        ),
    }
    print()
    print("| contestant | sequences/s | x SimpleRNN default | x SimpleRNN jit |")
    print("|---|---:|---:|---:|")
    for row in rows:
        speed = row["sequences_per_second"]
        print(f"| {row['name']} | {speed:,.0f} | {speed / default:.2f} | {speed / jit:.2f} |")
    print()
    print(
        f"keras_seqrnn (1 layer, as seqrnn train feeds it) is "
        f"{ratios['vs_simple_rnn_default']}x Keras SimpleRNN + fit and "
        f"{ratios['vs_simple_rnn_jit']}x with XLA (targets: 2.5x and 1.5x); "
        "on the same arrays with the same call, "
        f"{ratios['same_input_vs_simple_rnn_default']}x and "
        f"{ratios['same_input_vs_simple_rnn_jit']}x. The seqrnn train default "
        f"model is {ratios['default_model_vs_keras_equivalent']}x Keras' "
        "equivalent (Bidirectional(SimpleRNN) x 2, last + mean, XLA, one call "
        "per epoch)."
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "setup": {
            "sequences": args.sequences, "time": TIME, "features": FEATURES,
            "classes": CLASSES, "batch_size": BATCH, "units": 64,
            "epochs_per_round": args.epochs, "rounds": args.rounds,
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
        },
        "results": rows,
        "ratios": ratios,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
