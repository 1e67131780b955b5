"""Vanishing gradients over depth and over time, measured.

Depth: classifiers of 1, 2, 4, 8 and 16 stacked layers on JapaneseVowels,
`highway=None` against `highway="depth"`: each layer's gradient norm at
initialization, and the test accuracy after training.

Time: a recall task, the class of a sequence is the one-hot symbol of its
first step, followed by `length - 1` steps of noise; `highway=None` against
`highway="time"` at several lengths (chance is 1 / classes).

    python benchmarks/depth_and_length.py [--quick]

Prints two tables and writes benchmarks/results/depth_and_length.json and
.png. The notebook notebooks/02_gradients.ipynb runs the same functions at a
smaller size.
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_seqrnn  # noqa: E402
from keras_seqrnn import data  # noqa: E402
from keras_seqrnn import training  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"


def classifier(features, classes, units, layers, highway, mean=None, variance=None):
    return keras_seqrnn.build_classifier(
        features, classes, units=units, num_layers=layers, highway=highway,
        feature_mean=mean, feature_variance=variance,
    )


def layer_gradient_norms(model, padded, labels):
    """`||dE/dU_l||` for every layer's recurrent kernel at the current weights."""
    kernels = [cell.recurrent_kernel for cell in model.rnn.cells]
    with tf.GradientTape() as tape:
        logits = model.compute_logits(padded, training=False)
        real = training.real_sequences(model.compute_mask(padded))
        loss = training.classification_loss(labels, logits, real)
    grads = tape.gradient(loss, kernels)
    return [float(tf.norm(g)) for g in grads]


def train_and_test(model, train, test, epochs, batch_size=32, lr=3e-3):
    (x_train, y_train), (x_test, y_test) = train, test
    steps = -(-len(x_train) // batch_size)
    model.compile(
        keras.optimizers.AdamW(
            keras.optimizers.schedules.CosineDecay(lr, epochs * steps)
        ),
        metrics=["accuracy"],
        clip_norm=1.0,
    )
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    return float(np.mean(model.predict_on_batch(x_test).argmax(-1) == y_test))


def depth_experiment(depths, highways, units, epochs, seed=0):
    (x_train, y_train), (x_test, y_test) = keras_seqrnn.datasets.load_japanese_vowels()
    mean, variance = data.feature_statistics(x_train)
    train = (data.pad(x_train, max_length=29)[0], np.asarray(y_train))
    test = (data.pad(x_test, max_length=29)[0], np.asarray(y_test))
    rows = []
    for highway in highways:
        for depth in depths:
            keras.utils.set_random_seed(seed)
            model = classifier(12, 9, units, depth, highway, mean, variance)
            norms = layer_gradient_norms(model, *train)
            start = time.perf_counter()
            accuracy = train_and_test(model, train, test, epochs)
            rows.append({
                "highway": str(highway), "layers": depth,
                "init_grad_norms": norms, "test_accuracy": accuracy,
                "seconds": round(time.perf_counter() - start, 1),
            })
    return rows


def recall_data(count, length, classes, seed):
    """One-hot class at step 0, then `length - 1` steps of Gaussian noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, count)
    x = rng.normal(0.0, 0.5, (count, length, classes)).astype(np.float32)
    x[:, 0] = np.eye(classes, dtype=np.float32)[labels] * 2.0
    return x, labels


def length_experiment(lengths, highways, units, epochs, count, classes=4, seed=0):
    rows = []
    for length in lengths:
        train = recall_data(count, length, classes, seed)
        test = recall_data(512, length, classes, seed + 1)
        for highway in highways:
            keras.utils.set_random_seed(seed)
            model = classifier(classes, classes, units, 1, highway)
            start = time.perf_counter()
            accuracy = train_and_test(model, train, test, epochs, lr=1e-2)
            rows.append({
                "highway": str(highway), "length": length,
                "test_accuracy": accuracy,
                "seconds": round(time.perf_counter() - start, 1),
            })
    return rows


def plot(depth_rows, length_rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for highway in sorted({r["highway"] for r in depth_rows}):
        rows = [r for r in depth_rows if r["highway"] == highway]
        deepest = rows[-1]
        axes[0].semilogy(
            range(1, deepest["layers"] + 1), deepest["init_grad_norms"],
            marker="o", label=f"highway={highway}",
        )
        axes[1].plot(
            [r["layers"] for r in rows], [r["test_accuracy"] for r in rows],
            marker="o", label=f"highway={highway}",
        )
    axes[0].set(title=f"gradient norm per layer at init ({deepest['layers']} layers)",
                xlabel="layer (1 = bottom)", ylabel="||dE/dU||")
    axes[1].set(title="JapaneseVowels test accuracy", xlabel="layers",
                ylabel="accuracy", xscale="log")
    for highway in sorted({r["highway"] for r in length_rows}):
        rows = [r for r in length_rows if r["highway"] == highway]
        axes[2].plot(
            [r["length"] for r in rows], [r["test_accuracy"] for r in rows],
            marker="o", label=f"highway={highway}",
        )
    axes[2].set(title="recall of step 0 after noise", xlabel="sequence length",
                ylabel="test accuracy")
    for axis in axes:
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run")
    args = parser.parse_args()
    if args.quick:
        depth_rows = depth_experiment((1, 4), (None, "depth"), 16, 3)
        length_rows = length_experiment((5, 20), (None, "time"), 16, 3, 256)
    else:
        depth_rows = depth_experiment((1, 2, 4, 8, 16), (None, "depth"), 32, 40)
        length_rows = length_experiment(
            (10, 50, 100, 200), (None, "time"), 32, 30, 2048
        )
    print("| highway | layers | grad norm bottom / top at init | test accuracy |")
    print("|---|---|---|---|")
    for r in depth_rows:
        norms = r["init_grad_norms"]
        print(f"| {r['highway']} | {r['layers']} | {norms[0]:.2e} / {norms[-1]:.2e} "
              f"| {100 * r['test_accuracy']:.2f} % |")
    print()
    print("| highway | length | test accuracy |")
    print("|---|---|---|")
    for r in length_rows:
        print(f"| {r['highway']} | {r['length']} | {100 * r['test_accuracy']:.2f} % |")
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        result = {"depth": depth_rows, "length": length_rows}
        (RESULTS / "depth_and_length.json").write_text(json.dumps(result, indent=2) + "\n")
        plot(depth_rows, length_rows, RESULTS / "depth_and_length.png")


if __name__ == "__main__":
    main()
