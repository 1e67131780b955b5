import json
import shutil

import keras
import numpy as np
import pytest

import keras_seqrnn
from keras_seqrnn import TrainingPlan
from keras_seqrnn import data
from keras_seqrnn import fit_classifier
from keras_seqrnn import recipe

PLAN = TrainingPlan(units=6, num_layers=1, epochs=4, batch_size=8,
                    learning_rate=0.03, random_crop=0.2, dropout=0.2, seed=2)


def _separable(rng, count=40):
    """Two classes that differ in the sign of the mean of feature 0."""
    labels = np.arange(count) % 2
    sequences = []
    for label in labels:
        sequence = rng.normal(size=(rng.integers(4, 12), 3)).astype("float32")
        sequence[:, 0] += 1.0 if label else -1.0
        sequences.append(sequence)
    return sequences, labels


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == 2:
            raise KeyboardInterrupt


def test_default_plan_trains_and_keeps_it_in_the_model(rng):
    sequences, labels = _separable(rng)
    result = fit_classifier(sequences, labels, label_names=["minus", "plus"])
    assert result.plan == keras_seqrnn.plan_training(sequences, labels)[0]
    assert result.model.training_plan == result.plan.to_dict()
    assert result.model.label_names == ["minus", "plus"]
    assert result.model.frame_length == result.plan.frame_length
    assert len(result.history) == result.plan.epochs == result.best_epoch
    padded, _ = data.pad(sequences)
    accuracy = np.mean(result.model.predict(padded, verbose=0).argmax(1) == labels)
    assert accuracy > 0.95


def test_validation_keeps_the_epoch_with_the_lowest_validation_loss(rng):
    sequences, labels = _separable(rng)
    plan = PLAN.replace(epochs=6, validation_split=0.25)
    result = fit_classifier(sequences, labels, plan)
    assert (result.num_train, result.num_validation) == (30, 10)
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmin(losses))
    (_, _), (x_val, y_val) = data.stratified_split(sequences, labels, 0.25, 2)
    padded, _ = data.pad(x_val)
    logs = result.model.evaluate(padded, y_val, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(min(losses), rel=1e-4)


def test_resume_after_a_crash_between_the_checkpoint_writes(rng, tmp_path):
    """The model file of epoch 3 written, the JSON not yet: resuming reads
    the consistent pair of epoch 2 and ends as an uninterrupted run, with
    the same best validation epoch."""
    sequences, labels = _separable(rng)
    plan = PLAN.replace(validation_split=0.25)
    whole = fit_classifier(sequences, labels, plan,
                           checkpoint_dir=tmp_path / "whole")
    folder = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(sequences, labels, plan, checkpoint_dir=folder,
                       callbacks=[_Interrupt()])
    state = json.loads((folder / "checkpoint.json").read_text())
    assert state["epoch"] == 2 and state["model"] == "checkpoint-0002.keras"
    shutil.copy(folder / "checkpoint-0002.keras", folder / "checkpoint-0003.keras")
    resumed = fit_classifier(sequences, labels, plan, checkpoint_dir=folder,
                             resume=True)
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert resumed.best_epoch == whole.best_epoch
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert sorted(p.name for p in folder.iterdir()) == sorted({
        "checkpoint-0004.keras", f"checkpoint-{whole.best_epoch:04d}.keras",
        "checkpoint.json",
    })
    with pytest.raises(ValueError, match="already finished its 4 epochs"):
        fit_classifier(sequences, labels, plan, checkpoint_dir=folder, resume=True)
    with pytest.raises(ValueError, match="another plan \\(differing: units\\)"):
        fit_classifier(sequences, labels, plan.replace(units=7),
                       checkpoint_dir=folder, resume=True)
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        fit_classifier(sequences, labels, PLAN,
                       checkpoint_dir=tmp_path / "none", resume=True)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y: (x, np.zeros_like(y)), "a single class"),
        (lambda x, y: (x, y + 5), "Labels must lie in \\[0, 2\\), got 5 to 6"),
        (lambda x, y: (x, y[:-1]), "one integer label per series \\(40\\)"),
        (lambda x, y: ([*x[:3], np.full((4, 3), np.nan)], y[:4]),
         "finite values, got NaN or infinity in sequence 3"),
    ],
    ids=["one_class", "labels_out_of_range", "label_count", "nan"],
)
def test_bad_training_data(rng, change, message):
    x, y = change(*_separable(rng))
    with pytest.raises(ValueError, match=message):
        fit_classifier(x, y, PLAN, num_classes=2)


def test_a_frame_longer_than_a_series_is_refused(rng):
    sequences, labels = _separable(rng)
    with pytest.raises(ValueError, match="fewer than one frame \\(20 steps\\)"):
        fit_classifier(sequences, labels, PLAN.replace(frame_length=20))


def test_quantization_aware_fine_tuning(rng):
    sequences, labels = _separable(rng)
    result = fit_classifier(sequences, labels, PLAN)
    qat = recipe.fit_quantization_aware(result.model, sequences, labels,
                                        result.plan, epochs=1)
    assert isinstance(qat, keras_seqrnn.QuantizationAwareClassifier)
    padded, _ = data.pad(sequences)
    agreement = np.mean(
        qat.predict(padded, verbose=0).argmax(1)
        == result.model.predict(padded, verbose=0).argmax(1)
    )
    assert agreement > 0.9
