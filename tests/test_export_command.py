"""`python -m export` end to end on a trained run folder."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENV_ARGS = {"cwd": REPO, "capture_output": True, "text": True, "timeout": 600}

pytestmark = pytest.mark.slow


def train_dense_vae(run, epochs, *args):
    """A small dense_vae run folder at `run`, trained on 512 sample digits."""
    result = subprocess.run(
        [sys.executable, "train.py", "--model", "dense_vae", "--epochs", str(epochs), "--run-dir",
         str(run), "--dataset", "mnist_sample", "--set", "data.train_limit=512", "--set",
         "data.test_limit=128", *args], **ENV_ARGS)
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_dense_vae(tmp_path_factory.mktemp("export") / "run", 1)


def export(*args):
    return subprocess.run([sys.executable, "-m", "export", *args], **ENV_ARGS)


def test_export_writes_versions_and_every_tflite_mode(run_dir, tmp_path):
    base = tmp_path / "exports"
    result = export(str(run_dir), "--name", "digits", "--base-path", str(base),
                    "--tflite-quantize", "all")
    assert result.returncode == 0, result.stderr
    assert (base / "digits/1/saved_model.pb").is_file()
    assert (base / "digits/1/variables").is_dir()
    for name in ("digits.tflite", "digits.dynamic.tflite", "digits.float16.tflite",
                 "digits.int8.tflite"):
        assert (base / name).stat().st_size > 10_000, name
    assert result.stdout.count("ms/call at batch 1") == 4
    assert "max |diff| vs Keras" in result.stdout and "over serving_default, reconstruct, decode" in result.stdout
    # Hidden temporary folders are gone: a watching server only ever sees finished versions.
    assert sorted(p.name for p in (base / "digits").iterdir()) == ["1"]

    again = export(str(run_dir), "--name", "digits", "--base-path", str(base), "--no-tflite")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (base / "digits").iterdir()) == ["1", "2"]


def test_export_errors(run_dir, tmp_path, capfd):
    from tests.in_process import run_main
    from vae_zoo.commands.export import main

    result = export(str(tmp_path / "nothing"), "--base-path", str(tmp_path / "e"))
    assert result.returncode == 2 and "holds no model.keras" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "e").exists()
    base = tmp_path / "b"
    assert run_main(capfd, main, run_dir, "--base-path", base, "--no-tflite").returncode == 0
    result = run_main(capfd, main, run_dir, "--base-path", base, "--version", "1", "--no-tflite")
    assert result.returncode == 2 and "versions are never overwritten" in result.stderr


def test_a_mixed_float16_run_trains_with_loss_scaling_and_exports_float32(tmp_path):
    import csv

    import keras

    import vae_zoo  # noqa: F401  (registers the models with Keras)

    # float16 kernels are emulated on CPU (0.6 s a step of 32): 5 steps an epoch, k = 2
    run = train_dense_vae(tmp_path / "run", 3, "--set", "train.precision=mixed_float16",
                          "--batch-size", "32", "--set", "data.train_limit=160", "--set",
                          "data.test_limit=64", "--set", "eval.iw_samples=2")
    with open(run / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    model = keras.models.load_model(run / "model.keras")
    assert model.dtype_policy.name == "mixed_float16"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"

    result = export(str(run), "--name", "mixed", "--base-path", str(tmp_path / "exports"))
    assert result.returncode == 0, result.stderr
    assert "trained in mixed_float16: exporting its weights in float32" in result.stdout
    assert (tmp_path / "exports" / "mixed.tflite").stat().st_size > 10_000
