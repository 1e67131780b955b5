"""The training recipe: `fit_classifier`, what `seqrnn train` runs.

One call trains a `SequenceClassifier` on variable-length series with a
`TrainingPlan` (derived from the data by `plan_training` unless given):
input standardization from the training split, AdamW with a cosine
learning-rate decay, gradient clipping, batches grouped by length and
padded to one length (XLA compiles once), random crops, a checkpoint after
every epoch that `resume=True` continues exactly, and, with validation
data, the weights of the epoch with the lowest validation loss.
"""

import dataclasses
import json
import logging
import math
import os
import pathlib
import time

import keras
import numpy as np

from keras_seqrnn import atomic
from keras_seqrnn import data
from keras_seqrnn import saving
from keras_seqrnn.sequence_classifier import SequenceClassifier
from keras_seqrnn.sequence_classifier import build_classifier
from keras_seqrnn.training_plan import TrainingPlan
from keras_seqrnn.training_plan import plan_training

logger = logging.getLogger(__name__)

CHECKPOINT_STATE = "checkpoint.json"


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite: no model came out of the run."""


@dataclasses.dataclass
class FitResult:
    """What `fit_classifier` returns.

    Attributes:
        model: the trained `SequenceClassifier` (with validation data, the
            weights of the epoch with the lowest validation loss).
        plan: the `TrainingPlan` it ran.
        history: one dict per epoch (`epoch`, `loss`, `accuracy`,
            `grad_norm`, `grad_norm_max`, `clipped`, `val_*`, `seconds`).
        seconds: training time, resumed runs included.
        num_train: series trained on.
        num_validation: series held out for validation.
        best_epoch: the epoch whose weights the model has.
    """

    model: SequenceClassifier
    plan: TrainingPlan
    history: list[dict]
    seconds: float
    num_train: int
    num_validation: int
    best_epoch: int


def new_classifier(
    plan: TrainingPlan,
    sequences,
    num_classes: int,
    label_names=None,
) -> SequenceClassifier:
    """A compiled, untrained classifier as `plan` describes it.

    Args:
        plan: the `TrainingPlan`.
        sequences: the training series; the model standardizes its inputs
            with their statistics (`data.feature_statistics`) and compiles
            its learning-rate decay for their number of batches.
        num_classes: the number of classes.
        label_names: None or the class names, kept with the model.

    Returns:
        A built, compiled `SequenceClassifier`.
    """
    mean, variance = data.feature_statistics(sequences)
    model = build_classifier(
        int(np.shape(sequences[0])[-1]),
        num_classes,
        units=plan.units,
        num_layers=plan.num_layers,
        highway=plan.highway,
        bidirectional=plan.bidirectional,
        pooling=plan.pooling,
        feature_mean=mean,
        feature_variance=variance,
        dropout=plan.dropout,
        input_noise=plan.input_noise,
        label_names=label_names,
        seed=plan.seed,
        frame_length=plan.frame_length,
        training_plan=plan.to_dict(),
    )
    steps = data.count_batches(sequences, plan.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        plan.learning_rate, decay_steps=max(plan.epochs * steps, 1)
    )
    model.compile(
        keras.optimizers.AdamW(schedule, weight_decay=plan.weight_decay),
        metrics=["accuracy"],
        clip_norm=plan.clip_norm,
        label_smoothing=plan.label_smoothing,
        steps_per_execution=_steps_per_execution(steps),
    )
    return model


def fit_classifier(
    sequences,
    labels,
    plan: TrainingPlan | None = None,
    *,
    num_classes: int | None = None,
    label_names=None,
    validation_data=None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callbacks=(),
    verbose: int = 0,
) -> FitResult:
    """Trains a `SequenceClassifier` on labelled series.

    Args:
        sequences: the training series, a list of `(length, features)`
            float arrays (finite; lengths may differ).
        labels: one integer label per series, in `[0, num_classes)`.
        plan: a `TrainingPlan`. Default: `plan_training(sequences, labels)`.
        num_classes: Default: the largest label plus one, or the number of
            `label_names`.
        label_names: None or the class names, kept with the model.
        validation_data: None, or `(sequences, labels)` to choose the
            epoch by. Default: None, or the stratified `plan.validation_split`
            of the training series.
        checkpoint_dir: None, or a folder for a checkpoint after every
            epoch (`checkpoint.json` naming the model file of the epoch).
        resume: continue the run checkpointed in `checkpoint_dir`; it must
            have been started with the same plan. The result equals an
            uninterrupted run's.
        callbacks: more Keras callbacks for `fit`.
        verbose: Keras' `fit` verbosity. Default: `0`.

    Returns:
        A `FitResult`.

    Raises:
        ValueError: invalid series or labels, a single class, a series
            shorter than one frame, or a checkpoint that does not match.
        TrainingDivergedError: the loss became NaN or infinite; the message
            names the epoch, the last finite loss and the gradient norm.

    Example:

    ```python
    result = keras_seqrnn.fit_classifier(x_train, y_train)
    probabilities = result.model.predict(keras_seqrnn.data.pad(x_test)[0])
    ```
    """
    labels = np.asarray(labels)
    if label_names is not None:
        num_classes = num_classes or len(label_names)
    num_classes = num_classes or int(labels.max()) + 1
    if plan is None:
        plan, _ = plan_training(sequences, labels, num_classes)
    check_training_data(sequences, labels, num_classes, plan)
    if validation_data is None and plan.validation_split:
        (sequences, labels), validation_data = data.stratified_split(
            sequences, labels, plan.validation_split, plan.seed
        )
    checkpoint = None
    if checkpoint_dir is not None:
        checkpoint = _Checkpoint(pathlib.Path(checkpoint_dir), plan)
    elif resume:
        raise ValueError("`resume=True` needs the `checkpoint_dir` to resume.")
    keras.utils.set_random_seed(plan.seed)
    if resume:
        model = checkpoint.restore()
    else:
        model = new_classifier(plan, sequences, num_classes, label_names)
        if checkpoint is not None:
            checkpoint.folder.mkdir(parents=True, exist_ok=True)
    held_out = [] if validation_data is None else list(validation_data[0])
    longest = max(len(s) for s in [*sequences, *held_out])
    # One batch shape: XLA compiles the step once.
    bucketing = {"pad_to_length": longest}
    history = checkpoint.history if checkpoint else []
    initial_epoch = len(history)
    if initial_epoch >= plan.epochs:
        raise ValueError(
            f"{checkpoint_dir}: the run already finished its {plan.epochs} "
            "epochs."
        )
    train, steps = data.epochs_dataset(
        sequences,
        labels,
        plan.batch_size,
        epochs=plan.epochs,
        initial_epoch=initial_epoch,
        seed=plan.seed,
        random_crop=plan.random_crop,
        **bucketing,
    )
    validation = None
    if validation_data is not None:
        validation = data.bucketed_dataset(
            *validation_data, plan.batch_size, **bucketing
        )
    recorder = _Recorder(history, checkpoint, validation is not None)
    model.fit(
        train,
        epochs=plan.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps,
        validation_data=validation,
        callbacks=[recorder, *callbacks],
        shuffle=False,  # The dataset shuffles itself, seeded.
        verbose=verbose,
    )
    if recorder.diverged is not None:
        raise TrainingDivergedError(recorder.diverged)
    if recorder.best_weights is not None:
        model.set_weights(recorder.best_weights)
    return FitResult(
        model=model,
        plan=plan,
        history=recorder.history,
        seconds=recorder.seconds,
        num_train=len(sequences),
        num_validation=len(held_out),
        best_epoch=recorder.best_epoch,
    )


def fit_quantization_aware(
    model: SequenceClassifier,
    sequences,
    labels,
    plan: TrainingPlan,
    epochs: int,
) -> keras.Model:
    """Fine-tunes a quantization-aware copy of a trained classifier.

    Args:
        model: the trained classifier.
        sequences: the training series (their ranges start the fake
            quantizers' ranges).
        labels: their labels.
        plan: the plan `model` was trained with (batch size, clipping,
            label smoothing; the learning rate is a tenth of its).
        epochs: epochs of fine-tuning.

    Returns:
        The trained `QuantizationAwareClassifier`; export it with
        `export.to_tflite(..., "mobile-int8")`.
    """
    from keras_seqrnn.quantization_aware_classifier import quantize_aware

    padded, _ = data.pad(sequences)
    qat = quantize_aware(model, calibration_data=padded)
    qat.compile(
        keras.optimizers.Adam(plan.learning_rate / 10),
        metrics=["accuracy"],
        clip_norm=plan.clip_norm,
        label_smoothing=plan.label_smoothing,
    )
    qat.fit(
        padded,
        np.asarray(labels),
        batch_size=plan.batch_size,
        epochs=epochs,
        verbose=0,
    )
    return qat


def check_training_data(sequences, labels, num_classes: int,
                        plan: TrainingPlan) -> None:
    """What `fit_classifier` checks before it trains (call it to fail
    before writing anything).

    Raises:
        ValueError: series that are not finite `(length, features)`
            arrays, labels out of range, a single class, or a series
            shorter than one frame of the plan.
    """
    data.check_sequences(sequences)
    labels = np.asarray(labels)
    count = len(sequences)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"Expected one integer label per series ({count}), got an array "
            f"of shape {labels.shape} and dtype {labels.dtype}."
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"Labels must lie in [0, {num_classes}), got {labels.min()} to "
            f"{labels.max()}."
        )
    if len(np.unique(labels)) < 2:
        raise ValueError(
            "The training series hold a single class; a classifier needs "
            "at least two."
        )
    lengths = np.array([len(s) for s in sequences])
    short = np.flatnonzero(lengths < plan.frame_length)
    if short.size:
        raise ValueError(
            f"series {short[0] + 1} has {lengths[short[0]]} steps, fewer than "
            f"one frame ({plan.frame_length} steps); use a frame_length of at "
            f"most {lengths.min()}."
        )


def _steps_per_execution(steps: int, largest: int = 16) -> int:
    """The largest divisor of `steps` up to `largest`.

    Fewer, larger calls: Keras' per-step overhead outweighs a small model's
    step (benchmarks/train_throughput.py). It must divide the epoch: Keras
    3.15 counts every call as `steps_per_execution` steps, so a remainder
    makes it stop the last epochs early and restart the data ("Your input
    ran out of data").
    """
    return max(d for d in range(1, min(steps, largest) + 1) if steps % d == 0)


def random_states(model: keras.Model) -> list:
    """The model's seed generators' states, which draw the dropout masks:
    a `.keras` file leaves them out, and a resumed run must draw the masks
    of an uninterrupted one."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class _Checkpoint:
    """The checkpoint of a run: `checkpoint.json` names the model file of
    the last epoch and holds the plan, the history, the seed generators'
    states and the best validation epoch. The model file is written first,
    under the epoch's own name, and the old one removed only after the JSON
    names the new one, so a crash at any point leaves a consistent pair."""

    def __init__(self, folder, plan):
        self.folder = folder
        self.plan = plan
        self.history = []
        self.state = {}

    def restore(self):
        path = self.folder / CHECKPOINT_STATE
        if not path.is_file():
            raise ValueError(f"{self.folder}: no checkpoint to resume from.")
        state = json.loads(path.read_text())
        saved = TrainingPlan.from_dict(state["plan"])
        if saved != self.plan:
            changed = sorted(
                k for k, v in self.plan.to_dict().items()
                if saved.to_dict()[k] != v
            )
            raise ValueError(
                f"{self.folder}: the checkpoint was written with another "
                f"plan (differing: {', '.join(changed)})."
            )
        model = saving.load_classifier(self.folder / state["model"])
        for variable, value in zip(
            random_states(model), state["random_states"], strict=True
        ):
            variable.assign(value)
        self.history = state["history"]
        self.state = state
        return model

    def best_weights(self):
        best = self.state.get("best_model")
        if best is None:
            return None
        return saving.load_classifier(self.folder / best).get_weights()

    def save(self, model, history, best_epoch):
        epoch = len(history)
        name = f"checkpoint-{epoch:04d}.keras"
        with atomic.atomic_path(self.folder / name) as tmp:
            model.save(tmp)
        # The best epoch's own checkpoint is kept until another is better.
        best_name = f"checkpoint-{best_epoch:04d}.keras"
        previous = {self.state.get("model"), self.state.get("best_model")}
        self.state = {
            "epoch": epoch,
            "model": name,
            "best_model": best_name,
            "best_epoch": best_epoch,
            "plan": self.plan.to_dict(),
            "history": history,
            "random_states": [v.numpy().tolist() for v in random_states(model)],
        }
        write_json(self.folder / CHECKPOINT_STATE, self.state)
        for old in previous - {name, best_name, None}:
            (self.folder / old).unlink(missing_ok=True)


class _Recorder(keras.callbacks.Callback):
    """Keeps the history and the best weights, checkpoints, and stops on
    a loss that is not finite."""

    def __init__(self, history, checkpoint, select):
        super().__init__()
        self.history = list(history)
        self.checkpoint = checkpoint
        self.select = select
        self.seconds = history[-1]["seconds"] if history else 0.0
        self.best_weights = None
        self.best_loss = math.inf
        self.best_epoch = len(history)
        self.diverged = None
        if select and checkpoint is not None and checkpoint.state:
            self.best_epoch = checkpoint.state["best_epoch"]
            self.best_loss = history[self.best_epoch - 1]["val_loss"]

    def on_train_begin(self, logs=None):
        if self.checkpoint is not None and self.select:
            self.best_weights = self.checkpoint.best_weights()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.started
        entry = {"epoch": epoch + 1}
        entry.update({k: float(v) for k, v in (logs or {}).items()})
        entry["seconds"] = round(self.seconds, 3)
        if not math.isfinite(entry["loss"]):
            last = next(
                (h for h in reversed(self.history) if math.isfinite(h["loss"])),
                None,
            )
            self.diverged = (
                f"training diverged in epoch {epoch + 1}: the loss is "
                f"{entry['loss']}"
                + (
                    f" (last finite loss {last['loss']:.4g} in epoch "
                    f"{last['epoch']}, gradient norm up to "
                    f"{last['grad_norm_max']:.3g})"
                    if last
                    else ""
                )
                + "; lower the learning rate or the clipping norm."
            )
            self.model.stop_training = True
            return
        self.history.append(entry)
        if not self.select:
            self.best_epoch = epoch + 1
        elif entry["val_loss"] < self.best_loss:
            self.best_loss = entry["val_loss"]
            self.best_epoch = epoch + 1
            self.best_weights = self.model.get_weights()
        if self.checkpoint is not None:
            self.checkpoint.save(self.model, self.history, self.best_epoch)
        logger.info("epoch %d: %s", epoch + 1, entry)


def write_json(path: str | os.PathLike, value) -> None:
    """Writes `value` as indented JSON, atomically."""
    with atomic.atomic_path(path) as tmp:
        pathlib.Path(tmp).write_text(json.dumps(value, indent=2) + "\n")
