"""`python evaluate.py RUN --disentanglement` end to end on a tiny dsprites run."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.test_train_cli import ENV
from tests.test_train_cli import REPO
from tests.test_train_cli import event_tags
from tests.test_train_cli import train

pytestmark = pytest.mark.slow

QUICK = ["-k", "2", "--examples", "16", "--no-pictures"]


def evaluate(*args):
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=600)


def test_disentanglement_scores_go_to_metrics_json_and_tensorboard(tmp_path):
    run = tmp_path / "run"
    result = train("--model", "dense_vae", "--dataset", "dsprites", "--epochs", "1",
                   "--run-dir", str(run), "--set", "data.train_limit=2048",
                   "--set", "data.test_limit=512", "--set", "eval.iw_samples=2",
                   "--set", "eval.iw_examples=16", "--set", "eval.pictures=false")
    assert result.returncode == 0, result.stderr
    # Reduced sizes (200 points a metric instead of 5,000-10,000) keep this to seconds.
    result = evaluate(str(run), "-k", "2", "--examples", "16", "--disentanglement",
                      "--disentanglement-points", "200")
    assert result.returncode == 0, result.stderr
    assert "disentanglement: beta_vae " in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    scores = metrics["disentanglement"]
    assert "elbo" in metrics["test"] and scores["num_points"] == 200
    for name, key in (("beta_vae", "eval_accuracy"), ("factor_vae", "eval_accuracy"),
                      ("mig", "discrete_mig"), ("dci", "disentanglement"), ("sap", "SAP_score")):
        assert 0.0 <= scores[name][key] <= 1.0, name
    importance = np.array(scores["dci"]["importance_matrix"])
    assert importance.shape == (16, 5)  # dense_vae's 16 latents x dSprites' 5 factors
    assert scores["beta_vae"]["eval_accuracy"] > 0.3  # a trained code beats chance (0.2)
    tags = event_tags(run / "tensorboard")["scalars"] | event_tags(run / "tensorboard")["tensors"]
    assert {"disentanglement/mig", "disentanglement/dci_completeness",
            "disentanglement/sap", "disentanglement/dci_importance",
            "disentanglement/factor_traversals"} <= tags
    assert {"pictures/dci_importance.png", "pictures/factor_traversals.png",
            "pictures/samples.png"} <= set(metrics["pictures"])
    assert all((run / path).is_file() for path in metrics["pictures"])

    other = tmp_path / "no_factors"
    shutil.copytree(run, other)
    images = np.random.default_rng(0).integers(0, 2, size=(64, 64, 64)).astype(np.uint8) * 255
    np.savez(tmp_path / "blobs.npz", x=images)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["data"]["dataset"] = str(tmp_path / "blobs.npz")
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    before = (other / "metrics.json").read_text()
    result = evaluate(str(other), *QUICK, "--disentanglement")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --disentanglement needs data with ground-truth factors")
    assert (other / "metrics.json").read_text() == before  # refused before any work
