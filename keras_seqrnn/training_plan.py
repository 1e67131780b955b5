"""A training plan derived from the data: `plan_training`.

The settings that decide whether a recurrent classifier trains well on a
data set nobody tuned it for are the ones that follow the data's shape:
how many steps the recurrence runs (a 500-step series read one step at a
time trains slowly and forgets its start), how many optimizer steps a
small training set gets (60 epochs of 20 series are 240 updates, too few
to fit), the batch size, and how much augmentation stands in for the
series the data set lacks. As nnU-Net does for segmentation (Isensee et
al. 2021), `plan_training` reads a fingerprint of the training data and
derives those settings by fixed rules; every one can be overridden.
"""

import dataclasses
import math

import numpy as np

from keras_seqrnn import validation
from keras_seqrnn.highway_stacked_rnn import HIGHWAY_MODES
from keras_seqrnn.sequence_classifier import POOLINGS

# The recurrence length frame stacking aims at: long enough to keep a
# series' shape, short enough to train fast and not forget its start.
RECURRENCE_STEPS = 50
# Optimizer steps whatever the data set's size: 20 series get as many
# updates as 600.
OPTIMIZER_STEPS = 2000
MIN_EPOCHS = 5
RANDOM_CROP = 0.2
# The peak learning rate at batches of FULL_RATE_BATCH or more; smaller
# batches (noisier gradients) get a proportionally smaller one.
LEARNING_RATE = 3e-3
FULL_RATE_BATCH = 16
MIN_BATCH_SIZE = 4
MAX_BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class DataFingerprint:
    """What the plan reads of the training data.

    Attributes:
        num_series: training series.
        num_features: features (channels) per step.
        num_classes: classes.
        min_length: the shortest series' length.
        median_length: the median length.
        max_length: the longest series' length.
        class_counts: series per class.
    """

    num_series: int
    num_features: int
    num_classes: int
    min_length: int
    median_length: int
    max_length: int
    class_counts: tuple[int, ...]

    @classmethod
    def of(cls, sequences, labels, num_classes: int | None = None):
        """The fingerprint of `(length, features)` series and their integer
        labels (`num_classes` defaults to the largest label plus one)."""
        lengths = np.array([len(s) for s in sequences])
        labels = np.asarray(labels)
        num_classes = num_classes or int(labels.max()) + 1
        return cls(
            num_series=len(sequences),
            num_features=int(np.shape(sequences[0])[-1]),
            num_classes=int(num_classes),
            min_length=int(lengths.min()),
            median_length=int(np.median(lengths)),
            max_length=int(lengths.max()),
            class_counts=tuple(
                int(c) for c in np.bincount(labels, minlength=num_classes)
            ),
        )

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "class_counts": list(self.class_counts)}


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """Every setting of a training run, validated.

    `plan_training` derives one from the data; `TrainingPlan(...)` or
    `plan.replace(...)` sets any field by hand.

    Attributes:
        frame_length: consecutive steps one recurrent step reads
            (`SequenceClassifier(frame_length=...)`).
        units: state size of every recurrent layer.
        num_layers: stacked recurrent layers.
        highway: `"depth"`, `"time"`, `"both"` or None.
        bidirectional: whether a second stack reads backwards.
        pooling: `"last"`, `"mean"` or `"last_mean"`.
        dropout: dropout between layers and before the output layer.
        input_noise: Gaussian noise on standardized inputs in training.
        random_crop: the largest fraction of a series an epoch's random
            crop removes (`keras_seqrnn.data.epochs_dataset`); 0 for none.
        label_smoothing: probability spread over all classes in the target.
        weight_decay: decoupled weight decay of AdamW.
        learning_rate: peak learning rate (cosine decay to 0).
        batch_size: series per batch.
        epochs: passes over the training series.
        clip_norm: largest global gradient norm, or None.
        validation_split: fraction of the training series held out, per
            class, to choose the epoch whose weights are kept (the one with
            the lowest validation loss); 0 keeps the last epoch's.
        seed: seed of the initialization, the data order and the crops.
    """

    frame_length: int = 1
    units: int = 64
    num_layers: int = 2
    highway: str | None = None
    bidirectional: bool = True
    pooling: str = "last_mean"
    dropout: float = 0.1
    input_noise: float = 0.0
    random_crop: float = 0.0
    label_smoothing: float = 0.1
    weight_decay: float = 0.01
    learning_rate: float = 3e-3
    batch_size: int = 16
    epochs: int = 60
    clip_norm: float | None = 1.0
    validation_split: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("frame_length", "units", "num_layers", "batch_size",
                     "epochs"):
            validation.check_positive_int(name, getattr(self, name))
        for name in ("dropout", "random_crop", "label_smoothing",
                     "validation_split"):
            validation.check_rate(name, getattr(self, name))
        for name in ("input_noise", "weight_decay"):
            validation.check_non_negative_float(name, getattr(self, name))
        validation.check_positive_float("learning_rate", self.learning_rate)
        if self.clip_norm is not None:
            validation.check_positive_float("clip_norm", self.clip_norm)
        if self.highway not in HIGHWAY_MODES:
            raise ValueError(
                "Received an invalid value for argument `highway`, expected "
                f"one of {HIGHWAY_MODES}, got {self.highway!r}."
            )
        if self.pooling not in POOLINGS:
            raise ValueError(
                "Received an invalid value for argument `pooling`, expected "
                f"one of {POOLINGS}, got {self.pooling!r}."
            )
        if not isinstance(self.bidirectional, bool):
            raise ValueError(
                "Received an invalid value for argument `bidirectional`, "
                f"expected True or False, got {self.bidirectional!r}."
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(
                "Received an invalid value for argument `seed`, expected an "
                f"integer, got {self.seed!r}."
            )

    def replace(self, **changes) -> "TrainingPlan":
        """A copy with `changes` (field names), validated."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(
                f"TrainingPlan has no setting {', '.join(map(repr, unknown))}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingPlan":
        return cls().replace(**values)


def plan_training(
    sequences,
    labels,
    num_classes: int | None = None,
    **overrides,
) -> tuple[TrainingPlan, dict[str, str]]:
    """Derives a training plan from the training data.

    The rules (measured on the development suite of the UCR archive, see
    `benchmarks/ucr.py`):

    - `frame_length`: the longest series read in about 50 recurrent steps,
      `ceil(max_length / 50)`, but no longer than the shortest series.
    - `batch_size`: a tenth of the training series, rounded down to a power
      of two, between 4 and 32.
    - `learning_rate`: 3e-3, times `batch_size / 16` below 16 (smaller
      batches have noisier gradients).
    - `epochs`: about 2,000 optimizer steps whatever the number of series,
      and at least 5 epochs.
    - `random_crop`: 0.2, every epoch shows each series as a random window
      of 80 to 100 % of it.
    - the rest (64 units, 2 layers, both directions, the last and mean
      outputs, dropout 0.1, label smoothing 0.1, AdamW with weight decay
      0.01, clipping at 1.0) as `TrainingPlan`'s defaults.

    Args:
        sequences: the training series, `(length, features)` arrays.
        labels: their integer labels.
        num_classes: the number of classes. Default: the largest label
            plus one.
        **overrides: `TrainingPlan` fields that replace the derived values.

    Returns:
        `(plan, reasons)`: the `TrainingPlan`, and for each derived field a
        sentence saying what in the data chose it (overridden fields say
        so).

    Raises:
        ValueError: an override out of range.
        TypeError: an unknown override.

    Example:

    >>> plan, reasons = plan_training(x_train, y_train)  # doctest: +SKIP
    >>> plan.frame_length, reasons["frame_length"]  # doctest: +SKIP
    (11, 'series of up to 512 steps: 11 steps a frame, 47 recurrent steps')
    """
    data = DataFingerprint.of(sequences, labels, num_classes)
    plan = TrainingPlan().replace(**{"random_crop": RANDOM_CROP, **overrides})
    reasons = {name: "given" for name in overrides}
    derived = {}
    if "frame_length" not in overrides:
        frame = math.ceil(data.max_length / RECURRENCE_STEPS)
        # A series shorter than a frame would be mostly padding.
        frame = max(1, min(frame, data.min_length))
        derived["frame_length"] = frame
        reasons["frame_length"] = (
            f"series of {data.min_length}-{data.max_length} steps: {frame} a "
            f"frame, at most {math.ceil(data.max_length / frame)} recurrent "
            "steps"
        )
    if "batch_size" not in overrides:
        tenth = max(data.num_series / 10, 1)
        batch_size = np.clip(
            2 ** math.floor(math.log2(tenth)), MIN_BATCH_SIZE, MAX_BATCH_SIZE
        )
        derived["batch_size"] = int(min(batch_size, data.num_series))
        reasons["batch_size"] = f"{data.num_series} training series"
    batch_size = derived.get("batch_size", plan.batch_size)
    if "learning_rate" not in overrides:
        scale = min(1.0, batch_size / FULL_RATE_BATCH)
        derived["learning_rate"] = LEARNING_RATE * scale
        reasons["learning_rate"] = (
            f"{LEARNING_RATE:g} scaled by min(1, batch size / "
            f"{FULL_RATE_BATCH})"
        )
    if "epochs" not in overrides:
        batches = math.ceil(data.num_series * (1 - plan.validation_split)
                            / batch_size)
        epochs = max(MIN_EPOCHS, math.ceil(OPTIMIZER_STEPS / batches))
        derived["epochs"] = epochs
        reasons["epochs"] = (
            f"{epochs} epochs of {batches} batches: about "
            f"{epochs * batches} optimizer steps"
        )
    if "random_crop" not in overrides:
        reasons["random_crop"] = (
            "each epoch shows every series as a random window of "
            f"{100 - round(100 * plan.random_crop)}-100 % of it"
        )
    return plan.replace(**derived), reasons
