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
from tests.test_fault_tolerance import mnist_folder
from tests.test_fault_tolerance import state
from tests.test_fault_tolerance import wait_for_checkpoint
from tests.test_fault_tolerance import weights
from tests.test_train_cli import ENV
from tests.test_train_cli import REPO
from vae_zoo.distribute.cluster import make_tf_config
from vae_zoo.distribute.launcher import free_ports
from vae_zoo.distribute.launcher import launch

pytestmark = pytest.mark.slow
# 135 sample images: 7 held out, 128 = 2 global batches of 64, so no batch is split unevenly.
SMALL = ["--dataset", "mnist_sample", "--epochs", "2", "--batch-size", "64", "--set",
         "data.train_limit=135", "--set", "data.test_limit=64", "--set", "eval.iw_samples=2",
         "--set", "eval.pictures=false", "--set", "train.checkpoint_every=1",
         # Workers and one process agree to 1e-5 in float32, whatever `auto` picks here.
         "--set", "train.precision=float32"]


def fingerprint(output):
    return next(line.split()[2] for line in output.splitlines() if line.startswith("final weights:"))


def train_one_process(args, run_dir):
    result = subprocess.run([sys.executable, "train.py", *args, "--run-dir", str(run_dir)],
                            cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def start_workers(args, run_dir):
    """`train.py args` as 2 workers on 127.0.0.1 writing `run_dir`, each with its TF_CONFIG;
    their temporary folders go to `temporary(run_dir)`."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    temporary(run_dir).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen(
        [sys.executable, "train.py", *args, "--strategy", "multi_worker", "--run-dir",
         str(run_dir)], cwd=REPO, env={**ENV, "TF_CONFIG": make_tf_config(addresses, index),
                                       "TMPDIR": str(temporary(run_dir))},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in range(2)]


def temporary(run_dir):
    return Path(run_dir).with_name(f"{Path(run_dir).name}-tmp")


def finish(workers, timeout=600):
    """`(stdout, stderr)` of each worker once it has ended; kills any still running."""
    try:
        return [worker.communicate(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()


def assert_same_weights(run, reference):
    """The newest checkpoints of two runs hold the same arrays, equal within 1e-5 (relative to
    the largest weight)."""
    ours, theirs = weights(checkpoints(run)[-1]), weights(checkpoints(reference)[-1])
    assert sorted(ours) == sorted(theirs)
    scale = max(np.abs(v).max() for v in theirs.values() if v.dtype.kind == "f")
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("model_args", [
    ["--model", "conv_vae"],
    ["--model", "beta_vae", "--set", "model.capacity=true", "--set", "model.capacity_steps=8"],
    # Two optimizers, and a permutation of the codes drawn over the global batch (all-gathered).
    ["--model", "factor_vae"],
    # A folder streamed from disk: each worker reads only its own half of every batch.
    ["--model", "conv_vae", "--dataset", "FOLDER", "--set", "data.memory_budget_mb=0"],
], ids=["conv_vae", "capacity_beta_vae", "factor_vae", "conv_vae_streamed_folder"])
def test_two_workers_match_one_process_and_the_chief_writes_the_run(tmp_path, model_args):
    args = [*model_args, *SMALL]
    if "FOLDER" in model_args:  # 150 digits: 15 test, 135 train as SMALL's limit wants
        folder = str(mnist_folder(tmp_path / "digits", 150))
        args = [*SMALL, *(folder if arg == "FOLDER" else arg for arg in model_args)]
    train_one_process(args, tmp_path / "single")
    workers = start_workers(args, tmp_path / "multi")
    outputs = finish(workers)
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief, other = (stdout for stdout, _ in outputs)
    assert "Epoch 2/2" in chief and "Epoch" not in other  # only the chief shows progress
    assert "test ELBO" in chief and "test ELBO" not in other  # and evaluates
    assert fingerprint(chief) == fingerprint(other)  # both workers hold the same weights

    # Equal within 1e-5 to one process with the same global batch and seed.
    assert_same_weights(tmp_path / "multi", tmp_path / "single")

    # The chief's run folder is complete; no worker left a temporary folder behind.
    run = tmp_path / "multi"
    for name in ("config.yaml", "metrics.json", "model.keras", "history.csv",
                 "checkpoints/best.keras"):
        assert (run / name).is_file(), name
    assert json.loads((run / "metrics.json").read_text())["test"]["iw_samples"] == 2
    assert [row.split(",")[0] for row in (run / "history.csv").read_text().splitlines()[1:]] == [
        "0", "1"]
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert not list(temporary(run).glob("vae_zoo_worker*"))


# vq_vae's two stages in 3 epochs of 2 steps: the autoencoder (steps 1-2), the prior (3-6).
VQ = ["--model", "vq_vae", *SMALL, "--epochs", "1", "--set", "train.prior_epochs=2",
      "--set", "model.prior_filters=16"]


def test_vq_vae_workers_killed_in_the_prior_stage_resume_there_and_end_as_one_process(tmp_path):
    """Both stages under MWMS (the EMA codebook and the first-batch codebook draw span both
    workers' replicas), a worker killed in the prior's second epoch, both restarted: they go on
    in the prior stage, end within 1e-5 of one process, and choose the same best epoch."""
    train_one_process(VQ, tmp_path / "single")
    run = tmp_path / "multi"
    workers = start_workers(VQ, run)
    try:
        wait_for_checkpoint(workers, run, 5, seconds=400)
        workers[1].kill()
        outputs = finish(workers, timeout=120)
    finally:
        for worker in workers:
            worker.kill()
    assert workers[0].returncode != 0, outputs[0][0][-2000:]  # the chief stops on its dead peer
    assert state(checkpoints(run)[-1])["global_step"] == 5  # in the prior's second epoch
    # The chief's history says the prior's first epoch is the best there can be (-log p >= 0):
    # the stage must end on that epoch's weights (best-prior.keras) on every worker.
    history = run / "history-prior.csv"
    header, row = history.read_text().splitlines()
    column = header.split(",").index("val_loss")
    row = row.split(",")
    assert row[0] == "1"
    row[column] = "0.0"
    history.write_text(f"{header}\n{','.join(row)}\n")

    workers = start_workers(VQ, run)
    outputs = finish(workers)
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief, other = (stdout for stdout, _ in outputs)
    assert "resuming from step-000000005: epoch 3, batch 1" in chief
    assert "stage 1 of 2" not in chief and "stage 2 of 2: prior" in chief
    assert "Epoch" not in other and "test loss" in chief and "test loss" not in other
    assert fingerprint(chief) == fingerprint(other)
    assert checkpoints(run)[-1].name == checkpoints(tmp_path / "single")[-1].name == (
        "step-000000006")
    assert_same_weights(run, tmp_path / "single")
    assert [r.split(",")[0] for r in (run / "history.csv").read_text().splitlines()[1:]] == ["0"]
    assert [r.split(",")[0] for r in history.read_text().splitlines()[1:]] == ["1", "2"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stages"]["prior"]["best_epoch"] == 2 and "perplexity" in metrics["test"]


# One EMA step of a VectorQuantizer under MWMS, each worker given its half of a global batch.
EMA_STEP = """
import json, sys
from vae_zoo.distribute.cluster import current_cluster, multi_worker_strategy
strategy = multi_worker_strategy()  # first: before any other TensorFlow op
import numpy as np
import tensorflow as tf
from vae_zoo.layers import VectorQuantizer
from vae_zoo.models.vq.vq_vae_test import quantizer_with
codebook, z_e = (np.array(a, "float32") for a in json.loads(sys.argv[2]))
rank = current_cluster().rank
with strategy.scope():
    ema = quantizer_with(codebook, ema_decay=0.9, dead_code_threshold=0.95)
    fresh = VectorQuantizer(len(codebook), 2)  # its first training call draws the codebook
step = tf.function(lambda z: [layer(z, training=True)[0] for layer in (ema, fresh)])
strategy.run(step, args=(tf.constant(z_e[rank:rank + 1]),))
with open(f"{sys.argv[1]}/{rank}.json", "w") as f:
    json.dump({name: np.asarray(v.numpy()).tolist() for name, v in (
        ("counts", ema.ema_counts), ("sums", ema.ema_sums), ("codebook", ema.codebook),
        ("drawn", fresh.codebook))}, f)
"""


@pytest.mark.timeout(150)
def test_the_ema_codebook_update_sums_both_workers_halves_of_the_batch_once(tmp_path,
                                                                           monkeypatch):
    import tensorflow as tf

    from vae_zoo.layers import VectorQuantizer
    from vae_zoo.models.vq.vq_vae_test import CODEBOOK
    from vae_zoo.models.vq.vq_vae_test import Z_E
    from vae_zoo.models.vq.vq_vae_test import ema_by_hand
    from vae_zoo.models.vq.vq_vae_test import quantizer_with

    codebook = np.concatenate([CODEBOOK, [[50.0, 50.0]]]).astype("float32")  # e_3: never chosen
    script = tmp_path / "ema_step.py"
    script.write_text(EMA_STEP)
    (tmp_path / "out").mkdir()
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    arrays = json.dumps([codebook.tolist(), Z_E.tolist()])
    assert launch([sys.executable, str(script), str(tmp_path / "out"), arrays], 2, grace=5) == 0
    results = [json.loads((tmp_path / "out" / f"{rank}.json").read_text()) for rank in (0, 1)]

    # One device with the whole batch: the same draws (the seeds follow the update count).
    ema = quantizer_with(codebook, ema_decay=0.9, dead_code_threshold=0.95)
    fresh = VectorQuantizer(4, 2)
    for layer in (ema, fresh):
        layer(tf.constant(Z_E), training=True)

    # By hand, as one update from the 4 vectors of both halves: codes 0, 1 (worker 0), 2, 2
    # (worker 1); N_3 = 0.9 < 0.95 restarts e_3 at a vector of the batch with N_3 = 1.
    counts, sums, expected = ema_by_hand(codebook, Z_E.reshape(-1, 2), [0, 1, 2, 2], 0.9)
    for result in results:
        np.testing.assert_allclose(result["counts"], [*counts[:3], 1.0], rtol=1e-6)
        np.testing.assert_allclose(result["sums"][:3], sums[:3], rtol=1e-6)
        np.testing.assert_allclose(result["codebook"][:3], expected[:3], rtol=1e-5)
        np.testing.assert_allclose(result["codebook"][3], ema.codebook.numpy()[3], rtol=1e-6)
        np.testing.assert_allclose(result["sums"][3], ema.codebook.numpy()[3], rtol=1e-6)
        np.testing.assert_allclose(result["drawn"], fresh.codebook.numpy(), rtol=1e-6)
    assert any(np.allclose(ema.codebook.numpy()[3], v) for v in Z_E.reshape(-1, 2))


# dense_vae for 2 epochs of 16 steps (1078 sample images, 54 held out; global batch 64) with a
# checkpoint after every step.
PREEMPTIBLE = ["--model", "dense_vae", *SMALL, "--set", "data.train_limit=1078", "--deterministic"]
STEPS_PER_EPOCH = 16


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A 2-worker run of PREEMPTIBLE that nothing stopped: `(run folder, weights fingerprint)`."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    workers = start_workers(PREEMPTIBLE, run)
    outputs = finish(workers)
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    return run, fingerprint(outputs[0][0])


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_to_one_worker_stops_all_at_one_step_and_the_rerun_ends_bit_identical(
        tmp_path, uninterrupted, signum, code):
    """SIGTERM (a preempted pod) or Ctrl-C to worker 1 alone, mid-epoch: both workers save a
    checkpoint of the same step and exit with the signal's code; the same command again (after
    SIGTERM) resumes there and ends bit-identical to a run that was never stopped."""
    run = tmp_path / "run"
    workers = start_workers(PREEMPTIBLE, run)
    try:
        wait_for_checkpoint(workers, run, 2, seconds=400)
        workers[1].send_signal(signum)  # not the chief
        outputs = finish(workers, timeout=120)
    finally:
        for worker in workers:
            worker.kill()
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == code, stderr[-3000:]
    saved = state(checkpoints(run)[-1])
    assert saved["epoch"] == 0 and 2 < saved["step"] < STEPS_PER_EPOCH  # mid-epoch
    stopped = [line for _, stderr in outputs for line in stderr.splitlines()
               if line.startswith("interrupted: saved a checkpoint")]
    assert stopped == [f"interrupted: saved a checkpoint at epoch 1, batch {saved['step']} in "
                       f"{run}; continue with: python train.py --resume --run-dir {run}"] * 2
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    assert f"{name} on another worker: stopping after this batch" in outputs[0][1]
    assert f"{name}: stopping after this batch" in outputs[1][1]
    if signum != signal.SIGTERM:
        return  # the rerun resumes from the agreed checkpoint whatever stopped it: run once

    workers = start_workers(PREEMPTIBLE, run)
    outputs = finish(workers)
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief, other = (stdout for stdout, _ in outputs)
    assert f"resuming from step-{saved['global_step']:09d}" in chief
    assert fingerprint(chief) == fingerprint(other) == uninterrupted[1]
    final, expected = checkpoints(run)[-1], checkpoints(uninterrupted[0])[-1]
    assert final.name == expected.name == f"step-{2 * STEPS_PER_EPOCH:09d}"
    ours, theirs = weights(final), weights(expected)
    assert sorted(ours) == sorted(theirs) and len(ours) > 10
    for key in theirs:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


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
    env = {**ENV, "TMPDIR": str(tmp_path)}  # the killed worker's folder and the workers' logs
    launcher = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
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

    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from step-" in again.stdout
    assert state(checkpoints(run)[-1])["global_step"] == 12 * 2
    assert (run / "metrics.json").is_file()


def test_peers_that_never_answer_end_the_worker_with_one_line_within_the_timeout(tmp_path):
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]  # worker 1 is never started
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "train.py", "--model", "dense_vae", *SMALL, "--strategy", "multi_worker",
         "--run-dir", str(tmp_path / "run"), "--set", "train.cluster_timeout=5"], cwd=REPO,
        env={**ENV, "TF_CONFIG": make_tf_config(addresses, 0)}, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == -signal.SIGKILL  # 137 in a shell, as the message says
    assert time.monotonic() - start < 120
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did not all answer within 5 s" in errors[0], result.stderr
    assert "exit code 137" in errors[0]
    assert not (tmp_path / "run").exists()
