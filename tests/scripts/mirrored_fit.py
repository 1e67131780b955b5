"""Trains one model on one device and under MirroredStrategy; prints JSON.

Runs in its own process: the two logical CPU devices must exist before
TensorFlow initializes.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_seqrnn  # noqa: E402


def run(strategy, x, y):
    with strategy.scope():
        keras.utils.set_random_seed(7)
        model = keras_seqrnn.build_classifier(3, 2, units=6, num_layers=2)
        model.compile(
            keras.optimizers.Adam(0.01),
            metrics=["accuracy"],
            clip_norm=0.5,
        )
    history = model.fit(
        x, y, batch_size=16, epochs=4, shuffle=False, verbose=0
    ).history
    return {
        "replicas": strategy.num_replicas_in_sync,
        "jit_compile": model.jit_compile,
        "loss": history["loss"],
        "grad_norm": history["grad_norm"],
        "weights": [w.tolist() for w in model.get_weights()],
    }


rng = np.random.default_rng(0)
x = rng.normal(size=(64, 7, 3)).astype("float32")
x[::3, 4:] = 0.0
y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
devices = [d.name for d in tf.config.list_logical_devices("CPU")]
results = {
    "one": run(tf.distribute.OneDeviceStrategy(devices[0]), x, y),
    "mirrored": run(tf.distribute.MirroredStrategy(devices), x, y),
}
json.dump(results, sys.stdout)
