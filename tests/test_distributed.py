import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

SCRIPTS = pathlib.Path(__file__).parent / "scripts"


def _run_script(name, *args, timeout=300):
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_fit_under_mirrored_strategy_matches_one_device():
    results = _run_script("mirrored_fit.py")
    one, mirrored = results["one"], results["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert (one["jit_compile"], mirrored["jit_compile"]) == (True, False)
    np.testing.assert_allclose(mirrored["loss"], one["loss"], rtol=1e-5)
    np.testing.assert_allclose(mirrored["grad_norm"], one["grad_norm"], rtol=1e-5)
    for a, b in zip(mirrored["weights"], one["weights"]):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run_cluster(command, workers=2, timeout=300):
    """Runs `command(index)` as each worker of a localhost TF_CONFIG cluster.

    Returns each worker's standard output; fails on any non-zero exit.
    """
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
    processes = []
    for index in range(workers):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps({
            "cluster": {"worker": addresses},
            "task": {"type": "worker", "index": index},
        })
        processes.append(subprocess.Popen(
            command(index), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        ))
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in outputs]


def test_two_workers_on_localhost_end_with_identical_weights(tmp_path):
    script = str(SCRIPTS / "multi_worker.py")
    reference = tmp_path / "reference.json"
    subprocess.run([sys.executable, script, str(reference)], check=True,
                   capture_output=True, timeout=300)
    _run_cluster(
        lambda index: [sys.executable, script, str(tmp_path / f"worker{index}.json")]
    )
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    expected = json.loads(reference.read_text())
    assert [r["replicas"] for r in results] == [2, 2]
    for a, b in zip(results[0]["weights"], results[1]["weights"]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(results[0]["weights"], expected["weights"]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    losses = [h["loss"] for h in results[0]["history"]]
    np.testing.assert_allclose(
        losses, [h["loss"] for h in expected["history"]], rtol=1e-5
    )
    assert losses[-1] < losses[0]


def test_seqrnn_train_on_a_two_worker_cluster(tmp_path):
    from tests.test_cli import _write_ts

    rng = np.random.default_rng(3)
    train = _write_ts(tmp_path / "toy_TRAIN.ts", rng)
    test = _write_ts(tmp_path / "toy_TEST.ts", rng)
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "keras_seqrnn.cli", "train", "--data",
            str(train), "--test-data", str(test), "--out", str(out),
            "--units", "6", "--layers", "1", "--epochs", "3",
            "--batch-size", "8", "--lr", "0.03"]
    outputs = _run_cluster(lambda index: argv)
    assert "| test accuracy" in outputs[0]
    assert outputs[1] == ""
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert {"grad_norm", "grad_norm_max", "clipped"} <= set(history[0])
    assert metrics["test_accuracy"] > 0.8
    assert (out / "checkpoints").is_dir()
