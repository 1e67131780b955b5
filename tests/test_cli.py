import functools
import json
import pathlib
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import keras_seqrnn
from keras_seqrnn import cli
from keras_seqrnn import datasets
from keras_seqrnn import recipe

TS_HEADER = """@problemName Toy
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
"""


def _write_ts(path, rng, count=24):
    lines = []
    for i in range(count):
        label = "up" if i % 2 else "down"
        length = rng.integers(3, 7)
        sign = 1.0 if label == "up" else -1.0
        dims = [
            ",".join(f"{sign + v:.4f}" for v in rng.normal(size=length) * 0.3)
            for _ in range(2)
        ]
        lines.append(":".join(dims) + f":{label}")
    path.write_text(TS_HEADER + "\n".join(lines) + "\n")
    return path


def test_train_on_ts_files(rng, tmp_path, capsys):
    train = _write_ts(tmp_path / "toy_TRAIN.ts", rng)
    test = _write_ts(tmp_path / "toy_TEST.ts", rng)
    out = tmp_path / "run"
    status = cli.main(
        [
            "train",
            "--data", str(train),
            "--test-data", str(test),
            "--out", str(out),
            "--units", "8",
            "--layers", "1",
            "--epochs", "12",
            "--lr", "0.03",
            "--batch-size", "8",
            "--validation-split", "0.25",
        ]
    )
    assert status == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # The last epoch's checkpoint, and the best one's until training ends.
    best = f"checkpoint-{metrics['best_epoch']:04d}.keras"
    assert sorted(p.name for p in out.iterdir()) == sorted({
        "checkpoint.json", "checkpoint-0012.keras", best, "history.json",
        "metrics.json", "model.keras", "run.json",
    })
    assert metrics["label_names"] == ["up", "down"]
    assert metrics["test_accuracy"] > 0.9
    assert (metrics["train_sequences"], metrics["validation_sequences"]) == (18, 6)
    assert metrics["plan"]["units"] == 8
    assert metrics["plan_reasons"]["units"] == "given"
    assert metrics["test_data"] == str(test)
    model = keras.saving.load_model(out / "model.keras")
    assert model.training_plan == metrics["plan"]
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 13))
    assert {"loss", "accuracy", "grad_norm", "grad_norm_max", "clipped",
            "val_loss", "val_accuracy", "seconds"} <= set(history[-1])
    report = capsys.readouterr().out
    assert report.startswith("training plan\n")
    assert "| frame_length" in report and "| test accuracy" in report
    assert f"{100 * metrics['test_accuracy']:.2f} %" in report

    model = out / "model.keras"
    assert cli.main(["evaluate", str(model), "--data", str(test)]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy: {100 * metrics['test_accuracy']:.2f} % (24 sequences)" in printed
    assert "confusion matrix" in printed
    assert cli.main(["predict", str(model), str(test)]) == 0
    predicted = capsys.readouterr().out.split()
    assert len(predicted) == 24 and set(predicted) <= {"up", "down"}


def test_bundled_data_one_epoch(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["train", "--out", str(out), "--epochs", "1", "--units", "8"]
    assert cli.main(argv + ["--layers", "1", "--batch-size", "128"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_sequences"], metrics["test_sequences"]) == (270, 370)
    model = keras.saving.load_model(out / "model.keras")
    (_, _), (x_test, y_test) = datasets.load_japanese_vowels()
    padded, _ = keras_seqrnn.data.pad(x_test)
    assert metrics["test_accuracy"] == pytest.approx(
        np.mean(model.predict(padded, verbose=0).argmax(1) == y_test), abs=1e-6
    )
    assert model.label_names == [str(k) for k in range(1, 10)]
    np.testing.assert_allclose(
        model.standardization.mean.numpy().ravel(),
        np.concatenate(datasets.load_japanese_vowels()[0][0]).mean(axis=0),
        rtol=1e-5,
    )


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after_epoch:
            raise KeyboardInterrupt


def test_resume_gives_the_weights_of_an_uninterrupted_run(
    rng, tmp_path, monkeypatch, capsys
):
    train = _write_ts(tmp_path / "toy_TRAIN.ts", rng)
    test = _write_ts(tmp_path / "toy_TEST.ts", rng)
    # With dropout: its masks come from seed generators that a .keras file
    # leaves out; the checkpoint keeps their states.
    argv = ["train", "--data", str(train), "--test-data", str(test),
            "--units", "6", "--epochs", "4", "--batch-size", "8", "--seed", "5",
            "--dropout", "0.3"]
    assert cli.main(argv + ["--out", str(tmp_path / "whole")]) == 0

    monkeypatch.setattr(
        recipe, "fit_classifier",
        functools.partial(recipe.fit_classifier, callbacks=[_Interrupt(2)]),
    )
    interrupted = tmp_path / "interrupted"
    assert cli.main(argv + ["--out", str(interrupted)]) == 130
    assert "seqrnn train --out" in capsys.readouterr().err
    assert not (interrupted / "model.keras").exists()
    assert json.loads((interrupted / "checkpoint.json").read_text())["epoch"] == 2
    monkeypatch.undo()

    assert cli.main(["train", "--out", str(interrupted), "--units", "7",
                     "--resume"]) == 1
    assert "differ from it: units" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(interrupted), "--resume"]) == 0
    whole = keras.saving.load_model(tmp_path / "whole" / "model.keras")
    resumed = keras.saving.load_model(interrupted / "model.keras")
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    histories = [
        json.loads((folder / "history.json").read_text())
        for folder in (tmp_path / "whole", interrupted)
    ]
    assert [h["epoch"] for h in histories[1]] == [1, 2, 3, 4]
    np.testing.assert_allclose(
        [h["loss"] for h in histories[0]], [h["loss"] for h in histories[1]],
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["train"],
        ["train", "--out", "x", "--units", "0"],
        ["train", "--out", "x", "--highway", "sideways"],
        ["train", "--out", "x", "--lr", "-1"],
        ["train", "--out", "x", "--weight-decay", "-0.1"],
        ["train", "--out", "x", "--label-smoothing", "1"],
        ["train", "--out", "x", "--qat-epochs", "-1"],
        ["fly"],
    ],
    ids=["no_out", "units", "highway", "lr", "weight_decay", "label_smoothing",
         "qat_epochs", "command"],
)
def test_bad_arguments_exit_2(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage: seqrnn" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_console_script_version():
    result = subprocess.run(
        [sys.executable, "-m", "keras_seqrnn.cli", "--version"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"seqrnn {keras_seqrnn.__version__}"


def test_malformed_data_file_exits_1_and_writes_nothing(rng, tmp_path, capsys):
    train = _write_ts(tmp_path / "bad_TRAIN.ts", rng)
    lines = train.read_text().splitlines()
    lines[9] = lines[9].replace(",", ",abc,", 1)
    train.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    argv = ["train", "--data", str(train), "--test-data", str(train)]
    assert cli.main(argv + ["--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("seqrnn: error: ")
    assert "bad_TRAIN.ts, line 10" in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--test-data", "t.ts"], "--test-data is for data files"),
        (["--data", "missing.ts", "--test-data", "t.ts"],
         "missing.ts: no such data file"),
        (["--data", "only.tsv"], "only.tsv: no such data file"),
        (["--resume"], "no checkpoint to resume from"),
    ],
    ids=["bundled_with_test", "missing_file", "missing_tsv", "resume"],
)
def test_data_errors_exit_1(extra, message, tmp_path, capsys):
    assert cli.main(["train", "--out", str(tmp_path / "run"), *extra]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_export_prints_the_report_and_all_exports_every_preset(
    tmp_path, capsys
):
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--epochs", "2", "--units", "8"]
    assert cli.main(argv + ["--layers", "1"]) == 0
    model = str(out / "model.keras")
    capsys.readouterr()
    tflite = tmp_path / "jv.tflite"
    argv = ["export", model, "--target", "mobile", "--quantization", "int8"]
    assert cli.main(argv + ["--out", str(tflite)]) == 0
    report = capsys.readouterr().out
    assert tflite.exists()
    assert "max_length          29" in report and "int8 x" in report
    assert "verification        passed" in report

    assert cli.main(["export", model, "--all", "--out", str(tmp_path / "all")]) == 0
    table = capsys.readouterr().out.splitlines()
    rows = [line.split("|")[1:3] for line in table if line.startswith("| ")]
    assert [(t.strip(), q.strip()) for t, q in rows[1:]] == [
        ("keras", "float32"), ("cpu", "float32"), ("cpu", "float16"),
        ("cpu", "dynamic"), ("gpu", "float32"), ("mobile", "int8"),
        ("mobile", "float16"),
    ]
    assert "fully accelerated True" in table[-1]
    exported = json.loads((tmp_path / "all" / "export.json").read_text())
    assert set(exported) == {
        "cpu", "cpu-float16", "cpu-dynamic", "gpu", "mobile-int8",
        "mobile-float16",
    }


# An untrained model's optimizer has no variables to load.
@pytest.mark.filterwarnings("ignore:Skipping variable loading")
def test_export_errors_exit_1_and_write_nothing(tmp_path, capsys):
    missing = ["export", str(tmp_path / "none.keras"), "--out", str(tmp_path / "m.tflite")]
    assert cli.main(missing) == 1
    assert "no such model file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["export", "m.keras", "--out", "x", "--target", "tpu"])
    assert exit_info.value.code == 2
    model = keras_seqrnn.SequenceClassifier(12, 9, units=4)
    model.build((None, None, 12))
    model.save(tmp_path / "m.keras")
    argv = ["export", str(tmp_path / "m.keras"), "--target", "cpu"]
    argv += ["--quantization", "int8", "--out", str(tmp_path / "m.tflite")]
    assert cli.main(argv) == 1
    assert "does not take quantization 'int8'" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()


def test_qat_epochs_write_a_quantization_aware_model_that_exports(
    tmp_path, capsys
):
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--epochs", "2", "--units", "8"]
    assert cli.main(argv + ["--layers", "1", "--qat-epochs", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    model = keras.saving.load_model(out / "model_qat.keras")
    assert isinstance(model, keras_seqrnn.QuantizationAwareClassifier)
    (_, _), (x_test, y_test) = datasets.load_japanese_vowels()
    padded, _ = keras_seqrnn.data.pad(x_test)
    assert metrics["qat_test_accuracy"] == pytest.approx(
        np.mean(model.predict(padded, verbose=0).argmax(1) == y_test), abs=1e-6
    )
    capsys.readouterr()
    argv = ["export", str(out / "model_qat.keras"), "--target", "mobile"]
    argv += ["--quantization", "int8", "--out", str(tmp_path / "q.tflite")]
    assert cli.main(argv) == 0
    assert "verification        passed" in capsys.readouterr().out


def _write_tsv(path, rows):
    path.write_text("".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


def _tsv_rows(rng, count=24, labels=("-1", "1")):
    rows = []
    for i in range(count):
        label = labels[i % len(labels)]
        sign = 1.0 if label == labels[-1] else -1.0
        values = [f"{sign + v:.4f}" for v in rng.normal(size=12) * 0.3]
        rows.append([label, *values])
    return rows


def test_train_without_test_file_holds_out_a_stratified_split(
    rng, tmp_path, capsys
):
    train = _write_tsv(tmp_path / "toy_TRAIN.tsv", _tsv_rows(rng, 40))
    out = tmp_path / "run"
    argv = ["train", "--data", str(train), "--out", str(out), "--epochs", "3",
            "--units", "8"]
    assert cli.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_sequences"], metrics["test_sequences"]) == (30, 10)
    assert metrics["test_data"] == f"{train} (25% of it held out, stratified)"
    assert metrics["label_names"] == ["-1", "1"]
    assert "25% of it held out, stratified" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case, message",
    [
        ("one_class", "every series has the class '1'; a classifier needs"),
        ("unseen_label", "series 2 has the class '7', which the training file"),
        ("frame_longer_than_a_series",
         "series 1 has 12 steps, fewer than one frame (20 steps)"),
        ("missing_value", "line 3: series 3: step 3, dimension 1 is missing"),
        ("ragged", "line 2: the line has 11 values, line 1 has 12"),
        ("all_nan", "line 1: the series has no value (all NaN)"),
    ],
)
def test_bad_data_exits_1_with_one_line_and_writes_nothing(
    rng, tmp_path, capsys, case, message
):
    rows = _tsv_rows(rng)
    test_rows = _tsv_rows(rng)
    extra = []
    if case == "one_class":
        rows = [["1", *r[1:]] for r in rows]
    elif case == "unseen_label":
        test_rows[1][0] = "7"
    elif case == "frame_longer_than_a_series":
        extra = ["--frame-length", "20"]
    elif case == "missing_value":
        rows[2][3] = "NaN"
    elif case == "ragged":
        rows[1] = rows[1][:-1]
    else:
        rows[0] = [rows[0][0]] + ["NaN"] * 12
    train = _write_tsv(tmp_path / "d_TRAIN.tsv", rows)
    test = _write_tsv(tmp_path / "d_TEST.tsv", test_rows)
    out = tmp_path / "run"
    argv = ["train", "--data", str(train), "--test-data", str(test),
            "--out", str(out), "--epochs", "1", *extra]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("seqrnn: error: ") and message in error
    assert len(error.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_policy_fills_values(rng, tmp_path, capsys):
    rows = _tsv_rows(rng)
    rows[2][3] = "NaN"
    train = _write_tsv(tmp_path / "d_TRAIN.tsv", rows)
    argv = ["train", "--data", str(train), "--out", str(tmp_path / "run"),
            "--epochs", "1", "--units", "4", "--missing", "interpolate"]
    assert cli.main(argv) == 0


class _Poison(keras.callbacks.Callback):
    """Makes the weights NaN from the start of epoch 2."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            weight = self.model.head.kernel
            weight.assign(np.full(weight.shape, np.nan, "float32"))


def test_divergence_exits_1_and_saves_no_model(rng, tmp_path, monkeypatch,
                                               capsys):
    train = _write_tsv(tmp_path / "d_TRAIN.tsv", _tsv_rows(rng))
    monkeypatch.setattr(
        recipe, "fit_classifier",
        functools.partial(recipe.fit_classifier, callbacks=[_Poison()]),
    )
    out = tmp_path / "run"
    argv = ["train", "--data", str(train), "--out", str(out), "--epochs", "3",
            "--units", "4"]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert "training diverged in epoch 2: the loss is nan (last finite loss" in error
    assert "lower the learning rate" in error and "No model was saved" in error
    assert not (out / "model.keras").exists()
    # The last good checkpoint stays.
    state = json.loads((out / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and (out / state["model"]).exists()


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """An untrained 2-feature classifier of the toy `.ts` files, saved."""
    path = tmp_path_factory.mktemp("small") / "small.keras"
    model = keras_seqrnn.build_classifier(2, 2, units=4, num_layers=1,
                                          label_names=["down", "up"])
    model.build((None, None, 2))
    model.save(path)
    return path


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
@pytest.mark.parametrize(
    "damage, message",
    [
        ("random_bytes", "not a .keras file (not a zip archive"),
        ("truncated", "not a .keras file (not a zip archive"),
        ("empty_zip", "Keras cannot load it"),
        ("plain_keras_model", "a Sequential, not a keras_seqrnn SequenceClassifier"),
    ],
)
def test_unreadable_model_files_exit_1_with_one_line(
    rng, tmp_path, capsys, small_model, command, damage, message
):
    path = tmp_path / "model.keras"
    if damage == "random_bytes":
        path.write_bytes(rng.bytes(3000))
    elif damage == "truncated":
        content = small_model.read_bytes()
        path.write_bytes(content[: len(content) // 2])
    elif damage == "empty_zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{")
    else:
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(path)
    data = _write_ts(tmp_path / "toy.ts", rng)
    argv = {
        "evaluate": ["evaluate", str(path), "--data", str(data)],
        "predict": ["predict", str(path), str(data)],
        "export": ["export", str(path), "--out", str(tmp_path / "m.tflite"),
                   "--data", str(data)],
    }[command]
    assert cli.main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"seqrnn: error: {path}: ") and message in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "m.tflite").exists()


# An untrained model's optimizer has no variables to load.
@pytest.mark.filterwarnings("ignore:Skipping variable loading")
def test_evaluate_with_other_features_exits_1(rng, tmp_path, capsys, small_model):
    data = _write_tsv(tmp_path / "narrow.tsv", _tsv_rows(rng, labels=("down", "up")))
    assert cli.main(["evaluate", str(small_model), "--data", str(data)]) == 1
    error = capsys.readouterr().err
    assert "1 feature" in error and "the model takes 2" in error
    assert len(error.strip().splitlines()) == 1


def test_an_export_module_in_the_working_folder_is_named(tmp_path, small_model):
    (tmp_path / "export.py").write_text("VALUE = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "keras_seqrnn.cli", "export", str(small_model),
         "--out", str(tmp_path / "m.tflite")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"seqrnn: error: {tmp_path / 'export.py'} shadows keras_seqrnn's "
        "export package: rename it or run from another folder."
    )


def test_export_stream_and_predict_stream(tmp_path, capsys):
    """A forward model exports a stream-only gpu file, and `predict
    --stream` replays the test file through it and through Keras alike."""
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), "--epochs", "3", "--units", "8"]
    argv += ["--layers", "1", "--no-bidirectional", "--pooling", "last"]
    assert cli.main(argv) == 0
    model = str(out / "model.keras")
    tflite = tmp_path / "stream.tflite"
    argv = ["export", model, "--target", "gpu", "--stream", "4"]
    assert cli.main(argv + ["--out", str(tflite)]) == 0
    report = capsys.readouterr().out
    assert "max_length             any" in report
    assert "stream chunk           4" in report
    assert "stream (one)" in report and "verification           passed" in report
    test = (
        pathlib.Path(datasets.__file__).parent / "data" / "JapaneseVowels_TEST.ts"
    )
    lines = {}
    for path, chunk in ((model, []), (str(tflite), []), (model, ["3"])):
        assert cli.main(["predict", path, str(test), "--stream", *chunk]) == 0
        lines[path, tuple(chunk)] = capsys.readouterr().out.splitlines()
    keras_lines, tflite_lines = lines[model, ()], lines[str(tflite), ()]
    assert len(keras_lines) == 370
    assert keras_lines[0].startswith("0\t") and "settled after" in keras_lines[0]
    labels = [line.split("\t")[1] for line in keras_lines]
    assert labels == [line.split("\t")[1] for line in tflite_lines]
    assert cli.main(["predict", model, str(test)]) == 0
    assert capsys.readouterr().out.split() == labels
    assert [line.split("\t")[1] for line in lines[model, ("3",)]] == labels


@pytest.mark.filterwarnings("ignore:Skipping variable loading")
def test_streaming_a_bidirectional_model_exits_1(tmp_path, capsys, small_model):
    data_file = tmp_path / "x.ts"
    data_file.write_text(
        "@problemName x\n@timeStamps false\n@missing false\n@univariate false\n"
        "@dimensions 2\n@equalLength false\n@classLabel true down up\n@data\n"
        "1,2,3:4,5,6:up\n"
    )
    model = keras_seqrnn.build_classifier(2, 2, units=4, bidirectional=True)
    model.save(tmp_path / "bi.keras")
    argv = ["predict", str(tmp_path / "bi.keras"), str(data_file), "--stream"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "bidirectional" in err and len(err.strip().splitlines()) == 1
    argv = ["export", str(tmp_path / "bi.keras"), "--stream", "4"]
    assert cli.main(argv + ["--out", str(tmp_path / "m.tflite")]) == 1
    assert "cannot stream" in capsys.readouterr().err
    assert not (tmp_path / "m.tflite").exists()
