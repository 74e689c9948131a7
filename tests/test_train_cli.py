"""`python train.py` end to end, in a subprocess, as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import vae_zoo  # noqa: F401  (registers the models with Keras)
from tests.in_process import run_main
from tests.test_data import save_pngs
from vae_zoo.commands.train import main as train_main

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--dataset", "mnist_sample", "--set", "data.train_limit=512", "--set", "data.test_limit=256"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}

pytestmark = pytest.mark.slow


def train(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)


def event_tags(folder):
    tags = {"scalars": set(), "images": set(), "tensors": set()}
    for events in Path(folder).rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events.parent), size_guidance={"tensors": 0})
        acc.Reload()
        for kind in tags:
            tags[kind] |= set(acc.Tags().get(kind, []))
    return tags


def test_train_writes_a_complete_run_folder(tmp_path):
    run = tmp_path / "run"
    result = train("--model", "conv_vae", "--epochs", "2", "--run-dir", str(run), *SMALL)
    assert result.returncode == 0, result.stderr
    assert "test ELBO" in result.stdout and "data: embedded MNIST sample" in result.stdout
    for name in ("config.yaml", "metrics.json", "model.keras", "history.csv",
                 "checkpoints/best.keras"):
        assert (run / name).is_file(), name
    # An epoch end saves only once the last checkpoint is train.checkpoint_seconds (60) old; the
    # end of training always saves (2 epochs of 4 batches).
    assert sorted(p.name for p in (run / "checkpoints/steps").iterdir()) == ["step-000000008"]

    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["sizes"]["test"] == 256 and metrics["epochs"] == 2
    assert 0 < test["kl"] and 0 < test["reconstruction"] < 784 * np.log(2)
    assert test["elbo"] == pytest.approx(-(test["reconstruction"] + test["kl"]), rel=1e-3)

    model = keras.models.load_model(run / "model.keras")
    assert model.name == "conv_vae" and model.image_shape == (28, 28, 1)
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs

    tags = event_tags(run / "tensorboard")
    logged = tags["scalars"] | tags["tensors"]
    for tag in ("epoch_loss", "epoch_reconstruction", "epoch_kl", "epoch_elbo", "epoch_beta",
                "epoch_learning_rate"):
        assert tag in logged, (tag, logged)
    assert {"reconstructions", "prior_samples"} <= tags["images"] | tags["tensors"]
    assert {"test/iw_nll", "test/active_units", "evaluation/samples",
            "evaluation/traversals"} <= logged | tags["images"]
    assert "_hparams_/session_start_info" in logged  # the run is an HParams dashboard session

    # The evaluation at the end of training: IW NLL, bits/dim, active units, pictures, projector.
    assert test["iw_samples"] == 100 and test["iw_examples"] == 256
    # On the same 256 images the k=100 bound is tighter than the ELBO, by a few nats to a few
    # tens after only 8 steps (the posterior has barely left the prior: at 6c7f2f7 the gap was
    # 29.8 nats, 6.7% of the ELBO; with step-seeded noise it is 31.0): at most 10%.
    assert -test["elbo"] * 0.9 < test["iw_nll"] < -test["elbo"] + 0.5
    assert test["active_units"] == sum(v > 0.01 for v in test["latent_mean_variances"])
    assert test["latent_dim"] == len(test["latent_mean_variances"]) == 16
    assert 0 < test["iw_bits_per_dim"] < 1
    # Sample quality in the shipped MNIST feature net: as many samples as test images (256).
    assert test["quality_images"] == 256 and test["sample_fd"] > 0 and test["reconstruction_fd"] > 0
    assert 0 <= test["sample_precision"] <= 1 and 0 <= test["sample_recall"] <= 1
    assert {"test/sample_fd", "test/reconstruction_fd"} <= logged and "sample FD" in result.stdout
    for picture in ("samples", "reconstructions", "traversals", "interpolations", "latent_scatter"):
        assert (run / f"pictures/{picture}.png").stat().st_size > 1000, picture
    assert (run / "tensorboard/projector_config.pbtxt").is_file()
    assert len((run / "tensorboard/metadata.tsv").read_text().splitlines()) == 257

    result = subprocess.run([sys.executable, "evaluate.py", str(run), "-k", "20",
                             "--examples", "32", "--no-pictures"], cwd=REPO, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "IW NLL" in result.stdout and "k=20, 32 images" in result.stdout
    updated = json.loads((run / "metrics.json").read_text())["test"]
    assert (updated["iw_samples"], updated["iw_examples"]) == (20, 32)
    assert updated["quality_images"] == 256  # evaluate.py's 2,000, bounded by the test split
    result = subprocess.run([sys.executable, "evaluate.py", str(tmp_path / "nope")],
                            cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2 and "holds no model.keras" in result.stderr


def test_default_run_folder_is_numbered_when_taken(tmp_path):
    args = ["--model", "dense_vae", "--epochs", "1", *SMALL, "--set", "data.test_limit=32",
            "--set", "eval.iw_samples=2", "--set", "eval.pictures=false"]
    assert train(*args, cwd=tmp_path).returncode == 0
    result = train(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runs/dense_vae/model.keras").is_file()
    assert (tmp_path / "runs/dense_vae-2/model.keras").is_file()


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["--model", "vqvae"], "unknown model 'vqvae'; available models: "),
    (lambda d: ["--dataset", str(d / "missing")], "does not exist"),
    (lambda d: ["--dataset", str(d / "empty")], "holds no images"),
    (lambda d: ["--set", "model.bogus=1"], "unknown config key(s) model.bogus"),
    (lambda d: ["--dataset", str(d / "vectors.npy")], "the conv network needs images of shape"),
    (lambda d: ["--epochs", "0"], "train.epochs must be >= 1"),
    (lambda d: ["--model", "dense_vae", "--set", "model.filters=[8]"],
     "model.filters does not apply to the dense network; it takes hidden_units"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, make_args, message, capfd):
    (tmp_path / "empty").mkdir()
    np.save(tmp_path / "vectors.npy", np.random.default_rng(0).uniform(size=(50, 10)))
    run = tmp_path / "run"
    result = run_main(capfd, train_main, *make_args(tmp_path), "--run-dir", run)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert not run.exists()


def test_run_folder_with_another_run_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: {name: dense_vae, class_name: VAE}\n")
    result = train("--run-dir", str(run), *SMALL)  # a real process: its exit code
    assert result.returncode == 2 and "holds a different run" in result.stderr
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]


def test_other_image_shapes_train_end_to_end(tmp_path):
    save_pngs(tmp_path / "faces", [(32, 32)] * 40)
    run = tmp_path / "run"
    result = train("--model", "beta_vae", "--dataset", str(tmp_path / "faces"), "--epochs", "1",
                   "--batch-size", "8", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "metrics.json").read_text())["image_shape"] == [32, 32, 3]


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, str(REPO / "train.py"), "--model", "dense_vae", "--epochs", "40",
            "--run-dir", str(run), "--dataset", "mnist_sample", "--set", "data.train_limit=2000"]
    process = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    for line in process.stdout:
        if line.startswith("Epoch 3/") or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Ctrl-C: stopping after this batch" in stderr
    assert "saved a checkpoint at epoch 3, batch " in stderr
    assert "--resume" in stderr
    newest = sorted((run / "checkpoints/steps").iterdir())[-1]
    state = json.loads((newest / "state.json").read_text())
    assert state["epoch"] == 2  # the third epoch, part done
    assert state["global_step"] == 2 * 15 + state["step"]  # 15 batches per epoch
    assert not (run / "model.keras").exists()

    result = train("--resume", "--run-dir", str(run), "--epochs", "4")
    assert result.returncode == 0, result.stderr
    assert f"resuming from {newest.name}: epoch 3, batch {state['step']}" in result.stdout
    assert "Epoch 3/4" in result.stdout and "Epoch 1/4" not in result.stdout
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]
    assert (run / "model.keras").is_file()
    final = sorted((run / "checkpoints/steps").iterdir())[-1]
    assert json.loads((final / "state.json").read_text())["global_step"] == 4 * 15

    result = train("--resume", "--run-dir", str(run), "--set", "model.latent_dim=3")
    assert result.returncode == 2 and "only --epochs may change" in result.stderr
