import numpy as np
import pytest

from keras_seqrnn import DataFingerprint
from keras_seqrnn import TrainingPlan
from keras_seqrnn import plan_training


def _data(rng, count, lengths, classes=3, features=2):
    sequences = [
        rng.normal(size=(int(n), features)).astype("float32")
        for n in rng.choice(lengths, count)
    ]
    return sequences, np.arange(count) % classes


def test_fingerprint(rng):
    sequences, labels = _data(rng, 30, [10, 20, 40])
    sequences[0] = sequences[0][:3]
    data = DataFingerprint.of(sequences, labels)
    assert (data.num_series, data.num_features, data.num_classes) == (30, 2, 3)
    assert data.min_length == 3 and data.max_length == 40
    assert data.class_counts == (10, 10, 10)
    assert data.to_dict()["class_counts"] == [10, 10, 10]


@pytest.mark.parametrize(
    "count, length, frame, batch, epochs, learning_rate",
    [
        # 20 series of 24 steps: no frames, the smallest batch and a
        # quarter of the learning rate, 2,000 steps.
        (20, 24, 1, 4, 400, 7.5e-4),
        # 270 of 29 (JapaneseVowels' shape).
        (270, 29, 1, 16, 118, 3e-3),
        # 600 of 512: 11 steps a frame, the largest batch.
        (600, 512, 11, 32, 106, 3e-3),
        # 3,000 of 1,460: still 2,000 steps, at least 5 epochs.
        (3000, 1460, 30, 32, 22, 3e-3),
        (30000, 100, 2, 32, 5, 3e-3),
    ],
    ids=["tiny", "japanese_vowels", "long", "very_long", "large"],
)
def test_derived_settings(rng, count, length, frame, batch, epochs,
                          learning_rate):
    sequences = [np.zeros((length, 1), "float32")] * count
    plan, reasons = plan_training(sequences, np.arange(count) % 2)
    assert (plan.frame_length, plan.batch_size, plan.epochs) == (frame, batch, epochs)
    assert plan.learning_rate == pytest.approx(learning_rate)
    assert plan.random_crop == 0.2
    assert f"series of {length}-{length} steps" in reasons["frame_length"]
    assert set(reasons) == {
        "frame_length", "batch_size", "learning_rate", "epochs", "random_crop"
    }


def test_a_frame_is_never_longer_than_the_shortest_series(rng):
    sequences, labels = _data(rng, 40, [3, 200])
    plan, reasons = plan_training(sequences, labels)
    assert plan.frame_length == 3
    assert reasons["frame_length"].startswith("series of 3-200 steps: 3 a frame")


def test_overrides_replace_derived_settings_and_feed_the_rest(rng):
    sequences, labels = _data(rng, 200, [100])
    plan, reasons = plan_training(sequences, labels, batch_size=8,
                                  random_crop=0.0, units=32)
    assert (plan.batch_size, plan.random_crop, plan.units) == (8, 0.0, 32)
    # The epochs follow the given batch size: 25 batches, 80 epochs.
    assert plan.epochs == 80
    assert reasons["batch_size"] == reasons["units"] == "given"
    with pytest.raises(ValueError, match="`batch_size`, expected a positive integer, got 0"):
        plan_training(sequences, labels, batch_size=0)
    with pytest.raises(TypeError, match="no setting 'layers'"):
        plan_training(sequences, labels, layers=3)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"frame_length": 0}, "`frame_length`, expected a positive integer"),
        ({"dropout": 1.0}, "`dropout`, expected a float in \\[0, 1\\)"),
        ({"learning_rate": -1.0}, "`learning_rate`, expected a positive number"),
        ({"clip_norm": 0.0}, "`clip_norm`, expected a positive number"),
        ({"highway": "diagonal"}, "`highway`, expected one of"),
        ({"pooling": "max"}, "`pooling`, expected one of"),
        ({"bidirectional": 1}, "`bidirectional`, expected True or False"),
        ({"seed": 1.5}, "`seed`, expected an integer"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_invalid_plans(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainingPlan(**changes)


def test_dict_round_trip():
    plan = TrainingPlan(frame_length=3, highway="time", clip_norm=None)
    assert TrainingPlan.from_dict(plan.to_dict()) == plan
