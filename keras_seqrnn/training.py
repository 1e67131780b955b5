"""The training step: masked cross entropy, clipping, gradient norms.

One step serves every way of training: `SequenceClassifier.train_step`
(inside Keras' `fit`, also under `MirroredStrategy`) and the custom loop of
`keras_seqrnn.trainer` (the only way under `MultiWorkerMirroredStrategy`,
where Keras 3's `fit` fails).
"""

import shutil
import tempfile
from typing import NamedTuple

import keras
import tensorflow as tf

from keras_seqrnn import data


class StepResult(NamedTuple):
    """What one training step did.

    Attributes:
        loss: the mean cross entropy over the real sequences of this
            replica's batch (without regularization).
        logits: `(batch, classes)` logits of the forward pass.
        grad_norm: the global gradient norm before clipping.
        clipped: 1.0 where clipping scaled the gradients down, else 0.0.
        real: `(batch,)`, 1 for a real sequence, 0 for a padding row.
    """

    loss: tf.Tensor
    logits: tf.Tensor
    grad_norm: tf.Tensor
    clipped: tf.Tensor
    real: tf.Tensor


def at_least_float32(x: tf.Tensor) -> tf.Tensor:
    """Casts half-precision (mixed precision) tensors up to float32."""
    if x.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(x, tf.float32)
    return x


def real_sequences(mask: tf.Tensor) -> tf.Tensor:
    """`(batch,)` float: 1 for a row with a real step, 0 for a padding row."""
    return tf.cast(tf.reduce_any(tf.cast(mask, tf.bool), axis=1), tf.float32)


def classification_loss(
    labels: tf.Tensor,
    logits: tf.Tensor,
    real: tf.Tensor,
    sample_weight: tf.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> tf.Tensor:
    """Cross entropy from logits, averaged over the real sequences.

    `-log softmax(logits)[label]`, computed from the logits (stable where
    probabilities underflow), weighted by `sample_weight` and divided by the
    number of real sequences: padding rows contribute nothing, neither to the
    sum nor to the count. With `label_smoothing` ε the target puts `1 - ε`
    on the label and ε spread evenly over all K classes (Szegedy et al.
    2016): `(1 - ε) CE - ε / K * sum_k log p_k`.

    Args:
        labels: `(batch,)` or `(batch, 1)` integer classes.
        logits: `(batch, classes)`.
        real: `(batch,)`, 1 for a real sequence, 0 for a padding row.
        sample_weight: None or `(batch,)` weights (Keras turns
            `class_weight` into these).
        label_smoothing: float in `[0, 1)`, ε above. Default: `0.0`.

    Returns:
        The scalar loss; 0 for a batch with no real sequence.
    """
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    logits = at_least_float32(logits)
    per_sequence = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits
    )
    if label_smoothing:
        uniform = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=-1)
        per_sequence = (
            1.0 - label_smoothing
        ) * per_sequence + label_smoothing * uniform
    real = tf.cast(real, per_sequence.dtype)
    weights = real
    if sample_weight is not None:
        weights = weights * tf.reshape(
            tf.cast(sample_weight, per_sequence.dtype), [-1]
        )
    return tf.math.divide_no_nan(
        tf.reduce_sum(per_sequence * weights), tf.reduce_sum(real)
    )


def clip_gradients(
    gradients: list[tf.Tensor], clip_norm: float | None
) -> tuple[list[tf.Tensor], tf.Tensor, tf.Tensor]:
    """Scales gradients so that their global norm is at most `clip_norm`.

    Args:
        gradients: the gradients (None entries are kept as None).
        clip_norm: the largest global norm, or None not to clip.

    Returns:
        `(gradients, norm, clipped)`: the (clipped) gradients, their global
        norm before clipping, and 1.0 where clipping fired, else 0.0.
    """
    norm = tf.linalg.global_norm(gradients)
    if clip_norm is None:
        return gradients, norm, tf.constant(0.0)
    clipped, _ = tf.clip_by_global_norm(gradients, clip_norm, use_norm=norm)
    return clipped, norm, tf.cast(norm > clip_norm, tf.float32)


def train_step(
    model: keras.Model,
    x: tf.Tensor,
    y: tf.Tensor,
    sample_weight: tf.Tensor | None = None,
    clip_norm: float | None = None,
    label_smoothing: float = 0.0,
) -> StepResult:
    """One step of gradient descent on a `SequenceClassifier`.

    The forward pass and loss run under a `tf.GradientTape`. Under a
    `tf.distribute` strategy with several replicas, the gradients are summed
    over the replicas first, so that the global norm is that of the whole
    batch's gradient and clipping acts on it, as on one device.

    Args:
        model: a compiled `SequenceClassifier` (its `optimizer` is used).
        x: `(batch, time, features)` padded sequences.
        y: `(batch,)` integer labels.
        sample_weight: None or `(batch,)` weights.
        clip_norm: the largest global gradient norm, or None.
        label_smoothing: see `classification_loss`.

    Returns:
        A `StepResult`.

    Example:

    ```python
    model = keras_seqrnn.build_classifier(12, 9)
    model.compile(keras.optimizers.Adam(1e-3))
    for x, y in dataset:
        result = keras_seqrnn.training.train_step(model, x, y, clip_norm=1.0)
    ```
    """
    replicas = tf.distribute.get_replica_context()
    num_replicas = 1 if replicas is None else replicas.num_replicas_in_sync
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        logits = model.compute_logits(x, training=True)
        real = real_sequences(model.compute_mask(x))
        loss = classification_loss(
            y, logits, real, sample_weight, label_smoothing
        )
        # This replica's share of the mean over the whole (global) batch,
        # exact also where the replicas hold different numbers of sequences.
        count = tf.reduce_sum(real)
        total_count = count
        if num_replicas > 1:
            total_count = replicas.all_reduce("sum", count)
        share = tf.math.divide_no_nan(loss * count, total_count)
        total = share
        if model.losses:
            total += tf.add_n(model.losses) / num_replicas
    gradients = tape.gradient(total, variables)
    if num_replicas > 1:
        gradients = replicas.all_reduce("sum", gradients)
    gradients, norm, clipped = clip_gradients(gradients, clip_norm)
    if num_replicas > 1:
        # The optimizer sums over the replicas again; each adds its share.
        gradients = [g / num_replicas for g in gradients]
    model.optimizer.apply(gradients, variables)
    return StepResult(loss, logits, norm, clipped, real)


_EPOCH_LOGS = ("loss", "accuracy", "grad_norm", "grad_norm_max", "clipped")


class DistributedTrainer:
    """A custom training loop over `strategy.run`, for any strategy.

    Keras 3's `fit` works under `MirroredStrategy` but fails under
    `MultiWorkerMirroredStrategy` (keras-team/keras issue 20585); this loop
    works under both, and so is what trains on several hosts. It runs the
    same `train_step` as `fit` (masked loss, clipping, `grad_norm`) over
    `strategy.experimental_distribute_dataset`, shows a progress bar, and
    checkpoints every epoch so that an interrupted run resumes where it
    stopped, with the same batches (see `keras_seqrnn.data.epochs_dataset`).

    Create the model (and compile it, for its optimizer) inside
    `strategy.scope()`. Under `MultiWorkerMirroredStrategy`, every worker
    runs the same program; the chief (task 0) writes the checkpoints.

    Args:
        model: a compiled `SequenceClassifier`.
        strategy: a `tf.distribute.Strategy`. Default: the current one.
        clip_norm: the largest global gradient norm, or None.
            Default: the model's (`compile(clip_norm=...)`).
        checkpoint_dir: None, or a folder for `tf.train.Checkpoint`s of the
            model, the optimizer and the epoch. Default: `None`.

    Example:

    ```python
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = keras_seqrnn.build_classifier(12, 9)
        model.compile(keras.optimizers.Adam(1e-3), clip_norm=1.0)
    trainer = keras_seqrnn.training.DistributedTrainer(
        model, strategy, checkpoint_dir="ckpt")
    history = trainer.fit(sequences, labels, batch_size=64, epochs=10)
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        strategy: tf.distribute.Strategy | None = None,
        clip_norm: float | None = None,
        checkpoint_dir: str | None = None,
    ):
        self.model = model
        self.strategy = strategy or tf.distribute.get_strategy()
        self.clip_norm = model.clip_norm if clip_norm is None else clip_norm
        self.checkpoint_dir = checkpoint_dir
        with self.strategy.scope():
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = None
        if checkpoint_dir is not None:
            self.checkpoint = tf.train.Checkpoint(
                model=model, optimizer=model.optimizer, epoch=self.epoch
            )

    def fit(
        self,
        sequences,
        labels,
        batch_size: int,
        epochs: int,
        seed: int = 0,
        verbose: int = 1,
        random_crop: float = 0.0,
    ) -> list[dict]:
        """Trains for `epochs` epochs, resuming from the last checkpoint.

        Args:
            sequences: list of `(length, features)` arrays.
            labels: one integer label per sequence.
            batch_size: the global batch size, split over the replicas.
            epochs: the epoch to stop after.
            seed: the shuffling seed. Default: `0`.
            verbose: 1 for a progress bar (on the chief), 0 for none.
            random_crop: as for `keras_seqrnn.data.epochs_dataset`.
                Default: `0.0`.

        Returns:
            The logs of the epochs run now: `epoch`, `loss`, `accuracy`,
            `grad_norm` (mean), `grad_norm_max` and `clipped` (fraction).
        """
        self._restore()
        initial_epoch = int(self.epoch.numpy())
        if initial_epoch >= epochs:
            return []
        dataset, steps = data.epochs_dataset(
            sequences,
            labels,
            batch_size,
            epochs=epochs,
            initial_epoch=initial_epoch,
            seed=seed,
            random_crop=random_crop,
            pad_to_bucket_boundary=True,
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        iterator = iter(
            self.strategy.experimental_distribute_dataset(
                dataset.with_options(options)
            )
        )
        history = []
        for epoch in range(initial_epoch, epochs):
            progress = None
            if verbose and self.is_chief():
                progress = keras.utils.Progbar(
                    steps, unit_name="step", stateful_metrics=_EPOCH_LOGS
                )
            loss_sum = count = correct = norm_sum = clipped_sum = 0.0
            norm_max = 0.0
            for step in range(steps):
                values = self._distributed_step(next(iterator))
                step_loss, step_count, step_correct, norm, clipped = (
                    float(v) for v in values
                )
                loss_sum += step_loss
                count += step_count
                correct += step_correct
                norm_sum += norm
                norm_max = max(norm_max, norm)
                clipped_sum += clipped
                if progress is not None:
                    progress.update(
                        step + 1,
                        [("loss", loss_sum / max(count, 1)),
                         ("grad_norm", norm)],
                        finalize=False,
                    )
            logs = {
                "epoch": epoch + 1,
                "loss": loss_sum / max(count, 1),
                "accuracy": correct / max(count, 1),
                "grad_norm": norm_sum / steps,
                "grad_norm_max": norm_max,
                "clipped": clipped_sum / steps,
            }
            if progress is not None:
                progress.update(steps, list(logs.items())[1:], finalize=True)
            history.append(logs)
            self.epoch.assign(epoch + 1)
            self._save()
        # With `use_ema`, the weights become their moving averages, as at
        # the end of Keras' `fit`.
        self.model.optimizer.finalize_variable_values(
            self.model.trainable_variables
        )
        return history

    @tf.function(reduce_retracing=True)
    def _distributed_step(self, batch):
        sums = self.strategy.run(self._replica_step, args=batch)
        total = tf.distribute.ReduceOp.SUM
        loss_sum, count, correct = (
            self.strategy.reduce(total, value, axis=None) for value in sums[:3]
        )
        # After the all-reduce every replica holds the same norm and flag.
        norm, clipped = (
            self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
            for value in sums[3:]
        )
        return loss_sum, count, correct, norm, clipped

    def _replica_step(self, x, y):
        result = train_step(
            self.model,
            x,
            y,
            clip_norm=self.clip_norm,
            label_smoothing=self.model.label_smoothing,
        )
        count = tf.reduce_sum(result.real)
        hits = tf.equal(
            tf.argmax(result.logits, axis=-1, output_type=tf.int32),
            tf.reshape(tf.cast(y, tf.int32), [-1]),
        )
        correct = tf.reduce_sum(tf.cast(hits, tf.float32) * result.real)
        return result.loss * count, count, correct, result.grad_norm, result.clipped

    def is_chief(self) -> bool:
        """Whether this process writes the checkpoints (task 0)."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None or not resolver.cluster_spec().as_dict():
            return True
        if resolver.task_type == "chief":
            return True
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        return not has_chief and resolver.task_type == "worker" and (
            resolver.task_id == 0
        )

    def _restore(self):
        if self.checkpoint is None:
            return
        with self.strategy.scope():
            self.model.optimizer.build(self.model.trainable_variables)
        latest = tf.train.latest_checkpoint(self.checkpoint_dir)
        if latest is not None:
            self.checkpoint.restore(latest).assert_existing_objects_matched()

    def _save(self):
        if self.checkpoint is None:
            return
        # Every worker saves (the save is collective); only the chief's
        # copy is kept.
        directory = self.checkpoint_dir
        if not self.is_chief():
            directory = tempfile.mkdtemp(prefix="seqrnn-worker-checkpoint-")
        manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=2
        )
        manager.save()
        if directory != self.checkpoint_dir:
            shutil.rmtree(directory, ignore_errors=True)
