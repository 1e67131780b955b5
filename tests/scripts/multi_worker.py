"""Trains with `DistributedTrainer`; writes the history and weights as JSON.

With TF_CONFIG set, under MultiWorkerMirroredStrategy (one process per
worker); without it, on the default strategy, as the reference.
Usage: multi_worker.py OUTPUT.json
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

import keras_seqrnn

if "TF_CONFIG" in os.environ:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
else:
    strategy = tf.distribute.get_strategy()

rng = np.random.default_rng(0)
sequences = [
    rng.normal(size=(n, 3)).astype("float32") for n in rng.integers(2, 9, 48)
]
labels = np.array([int(s[:, 0].sum() > 0) for s in sequences])
with strategy.scope():
    keras.utils.set_random_seed(1)
    model = keras_seqrnn.build_classifier(3, 2, units=6, num_layers=2)
    model.compile(keras.optimizers.Adam(0.01), clip_norm=0.5)
trainer = keras_seqrnn.training.DistributedTrainer(model, strategy)
history = trainer.fit(sequences, labels, batch_size=8, epochs=3, verbose=0)
with open(sys.argv[1], "w") as file:
    json.dump(
        {
            "replicas": strategy.num_replicas_in_sync,
            "history": history,
            "weights": [w.tolist() for w in model.get_weights()],
        },
        file,
    )
