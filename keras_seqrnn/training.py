"""The training step: masked cross entropy, clipping, gradient norms.

One step serves every way of training: `SequenceClassifier.train_step`
(inside Keras' `fit`, also under `MirroredStrategy`) and the custom loop of
`keras_seqrnn.trainer` (the only way under `MultiWorkerMirroredStrategy`,
where Keras 3's `fit` fails).
"""

from typing import NamedTuple

import keras
import tensorflow as tf


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
) -> tf.Tensor:
    """Cross entropy from logits, averaged over the real sequences.

    `-log softmax(logits)[label]`, computed from the logits (stable where
    probabilities underflow), weighted by `sample_weight` and divided by the
    number of real sequences: padding rows contribute nothing, neither to the
    sum nor to the count.

    Args:
        labels: `(batch,)` or `(batch, 1)` integer classes.
        logits: `(batch, classes)`.
        real: `(batch,)`, 1 for a real sequence, 0 for a padding row.
        sample_weight: None or `(batch,)` weights (Keras turns
            `class_weight` into these).

    Returns:
        The scalar loss; 0 for a batch with no real sequence.
    """
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    per_sequence = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=at_least_float32(logits)
    )
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
        loss = classification_loss(y, logits, real, sample_weight)
        total = tf.add_n([loss, *model.losses]) / num_replicas
    gradients = tape.gradient(total, variables)
    if num_replicas > 1:
        gradients = replicas.all_reduce("sum", gradients)
    gradients, norm, clipped = clip_gradients(gradients, clip_norm)
    if num_replicas > 1:
        # The optimizer sums over the replicas again; each adds its share.
        gradients = [g / num_replicas for g in gradients]
    model.optimizer.apply(gradients, variables)
    return StepResult(loss, logits, norm, clipped, real)
