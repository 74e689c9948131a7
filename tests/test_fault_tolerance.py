"""Runs that lose nothing: killed, preempted or diverged, a run resumes exactly or stops cleanly.

Every test runs `python train.py` in a subprocess, as a cluster job would be run.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.test_train_cli import ENV
from tests.test_train_cli import REPO

pytestmark = pytest.mark.slow
STEPS_PER_EPOCH = 8  # 1024 sample images, 5% held out, batch 128
BASE = ["--model", "dense_vae", "--dataset", "mnist_sample", "--set", "data.train_limit=1024",
        "--set", "data.test_limit=64", "--set", "eval.iw_samples=2", "--set",
        "eval.pictures=false", "--set", "train.checkpoint_every=2"]


def command(run, *args):
    return [sys.executable, str(REPO / "train.py"), *BASE, "--run-dir", str(run), *args]


def train(run, *args):
    return subprocess.run(command(run, *args), cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)


def checkpoints(run):
    return sorted((Path(run) / "checkpoints/steps").glob("step-*"))


def state(path):
    return json.loads((path / "state.json").read_text())


def weights(path):
    """Every array of a checkpoint's weights file, by its path in the file."""
    arrays = {}
    with h5py.File(path / "weights.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays


def start_and_signal(run, signum, after_step, *args):
    """Starts a run and sends `signum` once a checkpoint at or past `after_step` exists."""
    return signal_after_checkpoint(command(run, *args), run, signum, after_step)


def wait_for_checkpoint(processes, run, step, seconds=300):
    """Returns once `run` holds a checkpoint at or past `step`; fails if any of `processes` (the
    train.py runs writing it) ends first or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and all(p.poll() is None for p in processes):
        if any(state(p)["global_step"] >= step for p in checkpoints(run)
               if (p / "state.json").is_file()):
            break
        time.sleep(0.05)
    assert all(p.poll() is None for p in processes), f"a run ended before step {step}"


def signal_after_checkpoint(argv, run, signum, after_step):
    """Runs `argv` (a train.py command writing `run`) and sends `signum` once a checkpoint at or
    past `after_step` exists; returns `(exit code, stderr)`."""
    process = subprocess.Popen(argv, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_checkpoint([process], run, after_step)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, stderr


def mnist_folder(folder, count):
    """`count` digits of the embedded sample as PNG files in `folder`."""
    from PIL import Image

    from vae_zoo.data.sources.mnist import EMBEDDED_MNIST

    folder.mkdir(parents=True)
    with np.load(EMBEDDED_MNIST) as data:
        for i, digit in enumerate(data["x_train"][:count]):
            Image.fromarray(digit).save(folder / f"{i:05d}.png")
    return folder


@pytest.mark.parametrize("source", ["mnist_sample", "streamed_folder"])
def test_sigkill_mid_epoch_then_the_same_command_ends_bit_identical(tmp_path, source):
    data = []
    if source == "streamed_folder":  # read from disk a batch at a time (memory budget 0)
        data = ["--dataset", str(mnist_folder(tmp_path / "digits", 1140)),
                "--set", "data.memory_budget_mb=0"]
    reference = train(tmp_path / "reference", "--epochs", "3", "--deterministic", *data)
    assert reference.returncode == 0, reference.stderr
    if data:
        assert "streamed from" in reference.stdout
    killed = tmp_path / "killed"
    code, _ = start_and_signal(killed, signal.SIGKILL, 11, "--epochs", "3", "--deterministic",
                               *data)
    assert code == -signal.SIGKILL
    newest = state(checkpoints(killed)[-1])
    assert newest["global_step"] < 3 * STEPS_PER_EPOCH  # killed before the end
    assert not (killed / "model.keras").exists()

    resumed = train(killed, "--epochs", "3", "--deterministic", *data)  # what a restart runs
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the run in" in resumed.stdout
    assert f"epoch {newest['epoch'] + 1}, batch {newest['step']}" in resumed.stdout
    final, expected = checkpoints(killed)[-1], checkpoints(tmp_path / "reference")[-1]
    assert final.name == expected.name == f"step-{3 * STEPS_PER_EPOCH:09d}"
    ours, theirs = weights(final), weights(expected)
    assert sorted(ours) == sorted(theirs) and len(ours) > 10
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    rows = (killed / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["0", "1", "2"]


def test_sigterm_saves_at_the_next_step_and_exits_143_then_resumes(tmp_path):
    run = tmp_path / "run"
    code, stderr = start_and_signal(run, signal.SIGTERM, 3, "--epochs", "3")
    assert code == 143, stderr
    assert "SIGTERM: stopping after this batch and saving a checkpoint" in stderr
    saved = state(checkpoints(run)[-1])
    assert f"saved a checkpoint at epoch {saved['epoch'] + 1}, batch {saved['step']}" in stderr
    assert saved["global_step"] == saved["epoch"] * STEPS_PER_EPOCH + saved["step"]
    resumed = train(run, "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr
    # Without --deterministic too, the resumed run repeats no batch and skips none.
    assert state(checkpoints(run)[-1])["global_step"] == 3 * STEPS_PER_EPOCH
    again = train(run, "--epochs", "3")
    assert again.returncode == 0 and "finished; nothing to do" in again.stdout


def test_a_nan_loss_stops_the_run_names_the_step_and_writes_nothing_after(tmp_path):
    run = tmp_path / "run"
    result = train(run, "--epochs", "3", "--set", "train.learning_rate=1e30",
                   "--set", "train.checkpoint_every=1")
    assert result.returncode == 3, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "training diverged: the loss is" in error[0], result.stderr
    step = int(error[0].split(" at step ")[1].split()[0])
    assert "Traceback" not in result.stderr
    assert not (run / "model.keras").exists() and not (run / "metrics.json").exists()
    assert all(state(p)["global_step"] < step for p in checkpoints(run))


TWO_STAGES = ["--model", "vq_vae", "--dataset", "mnist_sample", "--set", "data.train_limit=512",
              "--set", "data.test_limit=64", "--set", "eval.pictures=false", "--set",
              "train.checkpoint_every=2", "--set", "model.prior_filters=16", "--epochs", "1",
              "--set", "train.prior_epochs=2", "--deterministic"]
STAGE_STEPS = 4  # 512 sample images, 5% held out, batch 128


def test_a_two_stage_run_killed_in_its_second_stage_resumes_there_bit_identical(tmp_path):
    def command(run):
        return [sys.executable, str(REPO / "train.py"), *TWO_STAGES, "--run-dir", str(run)]

    reference = subprocess.run(command(tmp_path / "reference"), cwd=REPO, env=ENV,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr
    killed = tmp_path / "killed"
    code, _ = signal_after_checkpoint(command(killed), killed, signal.SIGKILL, STAGE_STEPS + 2)
    assert code == -signal.SIGKILL
    newest = state(checkpoints(killed)[-1])
    assert STAGE_STEPS < newest["global_step"] < 3 * STAGE_STEPS  # killed in the prior's stage
    resumed = subprocess.run(command(killed), cwd=REPO, env=ENV, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "stage 1 of 2" not in resumed.stdout and "stage 2 of 2: prior" in resumed.stdout
    final, expected = checkpoints(killed)[-1], checkpoints(tmp_path / "reference")[-1]
    assert final.name == expected.name == f"step-{3 * STAGE_STEPS:09d}"
    ours, theirs = weights(final), weights(expected)
    assert sorted(ours) == sorted(theirs) and len(ours) > 10
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    for run in (killed, tmp_path / "reference"):  # each stage's own history, epochs numbered on
        assert [r.split(",")[0] for r in (run / "history.csv").read_text().splitlines()[1:]] \
            == ["0"]
        assert [r.split(",")[0] for r in
                (run / "history-prior.csv").read_text().splitlines()[1:]] == ["1", "2"]
        assert (run / "checkpoints/best-prior.keras").is_file()
        assert (run / "tensorboard/prior/train").is_dir()
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["stages"]["prior"]["epochs"] == 2 and "perplexity" in metrics["test"]
