"""The README's bad-input table, one test per row: one clear line, exit code 2, nothing lost.

Each case runs `python train.py` as a user would: in a subprocess, or in this process for the
inputs refused before training starts (the same `main`, exit code and output).
"""

import json
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.in_process import run_main
from tests.test_fault_tolerance import signal_after_checkpoint
from tests.test_train_cli import ENV
from tests.test_train_cli import REPO
from vae_zoo.commands.train import main as train_main

pytestmark = pytest.mark.slow
TINY = ["--model", "dense_vae", "--epochs", "1", "--set", "eval.iw_samples=2",
        "--set", "eval.pictures=false"]


def train(*args, preexec_fn=None):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *TINY, *args], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=600,
                          preexec_fn=preexec_fn)


def assert_one_line_error(result, message):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


def write_png(path, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)).save(path)


def corrupt_image(d):
    for i in range(4):
        write_png(d / "images" / f"{i}.png")
    (d / "images" / "4.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    return d / "images"


def truncated_image(d):
    for i in range(4):
        write_png(d / "images" / f"{i}.png", (64, 64))
    whole = (d / "images" / "3.png").read_bytes()
    (d / "images" / "3.png").write_bytes(whole[: len(whole) // 2])
    return d / "images"


def truncated_npz(d):
    np.savez(d / "x.npz", x=np.zeros((100, 8, 8), np.uint8))
    whole = (d / "x.npz").read_bytes()
    (d / "x.npz").write_bytes(whole[: len(whole) // 2])
    return d / "x.npz"


def nan_pixels(d):
    x = np.full((50, 8, 8), 0.5, np.float32)
    x[7, 3, 3] = np.nan
    np.save(d / "x.npy", x)
    return d / "x.npy"


def out_of_range_pixels(d):
    np.save(d / "x.npy", np.full((50, 8, 8), 3.0, np.float32))
    return d / "x.npy"


def empty_dataset(d):
    np.save(d / "x.npy", np.zeros((0, 8, 8), np.uint8))
    return d / "x.npy"


@pytest.mark.parametrize("make, message", [
    (corrupt_image, "cannot read image"),
    (truncated_image, "cannot read image"),
    (truncated_npz, "truncated or not an .npz file?"),
    (nan_pixels, "1 pixel value(s) are NaN or infinite, first in image"),
    (out_of_range_pixels, "pixels must be uint8 (0..255) or floats in [0, 1]"),
    (empty_dataset, "the dataset is empty (0 images)"),
])
def test_bad_data_files(tmp_path, make, message, capfd):
    run = tmp_path / "run"
    result = run_main(capfd, train_main, *TINY, "--dataset", make(tmp_path), "--run-dir", run)
    assert_one_line_error(result, message)
    assert not run.exists()


@pytest.mark.parametrize("args, message", [
    (["--set", "model.bogus=1"], "unknown config key(s) model.bogus"),
    (["--set", "train.epochs=many"], "config key train.epochs must be of type int, got 'many'"),
    (["--set", "train.seed=!!python/object/apply:os.system ['echo owned']"],
     "the value is not valid YAML"),
])
def test_bad_config_values(tmp_path, args, message, capfd):
    run = tmp_path / "run"
    result = run_main(capfd, train_main, *TINY, "--dataset", "mnist_sample", "--run-dir", run,
                      *args)  # capfd: what os.system would print is caught too
    assert_one_line_error(result, message)
    assert "owned" not in result.stdout
    assert not run.exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bad") / "run"
    result = train("--dataset", "mnist_sample", "--set", "data.train_limit=256",
                   "--set", "data.test_limit=32", "--run-dir", str(run))
    assert result.returncode == 0, result.stderr
    return run


def snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_run_config_with_python_tags_is_refused_and_kept(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    config = run / "config.yaml"
    config.write_text(config.read_text().replace(
        "seed: 0", "seed: !!python/object/apply:os.system ['echo owned']"))
    before = snapshot(run)
    result = train("--resume", "--run-dir", str(run))
    assert_one_line_error(result, "config.yaml is not valid plain YAML")
    assert "owned" not in result.stdout and snapshot(run) == before


def test_a_run_folder_of_another_model_is_refused(finished_run):
    before = snapshot(finished_run)
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--resume", "--model", "conv_vae",
         "--run-dir", str(finished_run)], cwd=REPO, env=ENV, capture_output=True, text=True,
        timeout=600)
    assert_one_line_error(result, "holds a dense_vae run, not conv_vae")
    assert snapshot(finished_run) == before


def test_a_checkpoint_of_another_image_shape_is_refused(finished_run, tmp_path):
    other = tmp_path / "other"
    np.save(tmp_path / "x.npy", np.zeros((300, 12, 12), np.uint8))
    args = ["--dataset", str(tmp_path / "x.npy"), "--run-dir", str(other), "--epochs", "2",
            "--set", "train.checkpoint_every=1"]
    code, _ = signal_after_checkpoint([sys.executable, str(REPO / "train.py"), *TINY, *args],
                                      other, signal.SIGTERM, after_step=1)
    assert code == 143
    shutil.rmtree(other / "checkpoints/steps")
    shutil.copytree(finished_run / "checkpoints/steps", other / "checkpoints/steps")
    before = snapshot(other)
    result = train(*args)
    assert_one_line_error(result, "does not fit this model")
    assert snapshot(other) == before


def test_a_full_disk_is_one_line_and_leaves_earlier_checkpoints_whole(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    limit = max(len(b) for b in before.values()) // 2  # the next weights file cannot be written

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = train("--dataset", "mnist_sample", "--set", "data.train_limit=256",
                   "--set", "data.test_limit=32", "--run-dir", str(run), "--resume",
                   "--epochs", "2", preexec_fn=small_files)
    assert_one_line_error(result, "disk full or over a file-size limit")
    after = snapshot(run)
    for path in (p for p in before if str(p).startswith("checkpoints/steps")):
        assert after[path] == before[path], path  # earlier checkpoints untouched
    assert not list((run / "checkpoints/steps").glob(".tmp-*"))  # no half checkpoint
    assert after[next(p for p in before if p.name == "model.keras")] == before[
        next(p for p in before if p.name == "model.keras")]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
