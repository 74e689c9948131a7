"""Multi-worker training on TensorFlow's own engine: 2 workers on 127.0.0.1 against 1 process.

The workers are started here with their TF_CONFIG (as a cluster would), so that both outputs can
be read; `tests/test_launcher.py` covers `train.py --workers N`.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_fault_tolerance import checkpoints
from tests.test_fault_tolerance import state
from tests.test_fault_tolerance import weights
from tests.test_train_cli import ENV
from tests.test_train_cli import REPO
from vae_zoo.distribute.cluster import make_tf_config
from vae_zoo.distribute.launcher import free_ports

pytestmark = pytest.mark.slow
# 135 sample images: 7 held out, 128 = 2 global batches of 64, so no batch is split unevenly.
SMALL = ["--dataset", "mnist_sample", "--epochs", "2", "--batch-size", "64", "--set",
         "data.train_limit=135", "--set", "data.test_limit=64", "--set", "eval.iw_samples=2",
         "--set", "eval.pictures=false", "--set", "train.checkpoint_every=1"]


def fingerprint(output):
    return next(line.split()[2] for line in output.splitlines() if line.startswith("final weights:"))


@pytest.mark.parametrize("model_args", [
    ["--model", "conv_vae"],
    ["--model", "beta_vae", "--set", "model.capacity=true", "--set", "model.capacity_steps=8"],
    # Two optimizers, and a permutation of the codes drawn over the global batch (all-gathered).
    ["--model", "factor_vae"],
], ids=["conv_vae", "capacity_beta_vae", "factor_vae"])
def test_two_workers_match_one_process_and_the_chief_writes_the_run(tmp_path, model_args):
    single = subprocess.run(
        [sys.executable, "train.py", *model_args, *SMALL, "--run-dir", str(tmp_path / "single")],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    workers = []
    for index in range(2):
        workers.append(subprocess.Popen(
            [sys.executable, "train.py", *model_args, *SMALL, "--strategy", "multi_worker",
             "--run-dir", str(tmp_path / "multi")], cwd=REPO,
            env={**ENV, "TF_CONFIG": make_tf_config(addresses, index)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    try:
        outputs = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief, other = (stdout for stdout, _ in outputs)
    assert "Epoch 2/2" in chief and "Epoch" not in other  # only the chief shows progress
    assert "test ELBO" in chief and "test ELBO" not in other  # and evaluates
    assert fingerprint(chief) == fingerprint(other)  # both workers hold the same weights

    # Equal within 1e-5 to one process with the same global batch and seed.
    ours = weights(checkpoints(tmp_path / "multi")[-1])
    theirs = weights(checkpoints(tmp_path / "single")[-1])
    assert sorted(ours) == sorted(theirs)
    scale = max(np.abs(v).max() for v in theirs.values() if v.dtype.kind == "f")
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-5 * scale, err_msg=name)

    # The chief's run folder is complete; no worker left a temporary folder behind.
    run = tmp_path / "multi"
    for name in ("config.yaml", "metrics.json", "model.keras", "history.csv",
                 "checkpoints/best.keras"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["test"]["iw_samples"] == 2
    assert [row.split(",")[0] for row in (run / "history.csv").read_text().splitlines()[1:]] == [
        "0", "1"]
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))


def worker_pids(launcher_pid):
    """`{task index: pid}` of the workers a `--workers` launcher started."""
    pids = {}
    for child in Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split():
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"TF_CONFIG="):
                pids[json.loads(item[len(b"TF_CONFIG="):])["task"]["index"]] = int(child)
    return pids


def test_a_dead_worker_stops_the_others_and_all_resume_from_the_chiefs_checkpoint(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "train.py", "--model", "dense_vae", *SMALL, "--epochs", "12",
            "--strategy", "multi_worker", "--run-dir", str(run), "--workers", "2"]
    launcher = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and launcher.poll() is None:
            done = [state(p)["global_step"] for p in checkpoints(run) if (p / "state.json").exists()]
            if done and max(done) >= 6:
                break
            time.sleep(0.1)
        pids = worker_pids(launcher.pid)
        assert sorted(pids) == [0, 1], pids
        os.kill(pids[1], signal.SIGKILL)
        killed_at = time.monotonic()
        _, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    assert time.monotonic() - killed_at < 60  # the chief did not hang on its dead peer
    assert "worker 1 failed" in stderr, stderr[-2000:]
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text()
    saved = state(checkpoints(run)[-1])["global_step"]
    assert 6 <= saved < 12 * 2

    again = subprocess.run(args, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from step-" in again.stdout
    assert state(checkpoints(run)[-1])["global_step"] == 12 * 2
    assert (run / "metrics.json").is_file()


def test_peers_that_never_answer_end_the_worker_with_one_line_within_the_timeout(tmp_path):
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]  # worker 1 is never started
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "train.py", "--model", "dense_vae", *SMALL, "--strategy", "multi_worker",
         "--run-dir", str(tmp_path / "run"), "--set", "train.cluster_timeout=15"], cwd=REPO,
        env={**ENV, "TF_CONFIG": make_tf_config(addresses, 0)}, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == -signal.SIGKILL  # 137 in a shell, as the message says
    assert time.monotonic() - start < 120
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not all answer within 15 s" in errors[0], result.stderr
    assert "exit code 137" in errors[0]
    assert not (tmp_path / "run").exists()
