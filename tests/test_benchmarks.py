"""The benchmark scripts run end to end (tiny settings) and write their tables. Their numbers are
the scripts' business (benchmarks/results/), never asserted here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def run(script, *args):
    result = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_throughput_script(tmp_path):
    run("throughput.py", "--rounds", "1", "--dataset", "mnist_sample", "--models",
        "keras_io_recipe", "conv_vae_keras_io_arch", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "throughput.json").read_text())["rows"]
    assert [r["name"] for r in rows] == ["keras_io_recipe", "conv_vae_keras_io_arch"]
    assert rows[0]["vs_keras_io"] == 1.0 and all(r["images_per_second"] > 0 for r in rows)
    assert all(r["peak_rss_mb"] > 100 for r in rows)
    assert all(len(r["epochs"]) == 1 and 0 < r["epochs"][0]["cores"] <= os.cpu_count() + 0.1
               for r in rows)
    for r in rows:  # images per CPU-second: the epoch's images/s over the cores it used
        epoch = r["epochs"][0]
        assert r["images_per_cpu_second"] == pytest.approx(
            epoch["images_per_second"] / epoch["cores"], rel=0.03)
    assert "| keras_io_recipe" in (tmp_path / "throughput.md").read_text()


def test_quality_script(tmp_path):
    common = ["--rows", "dense_vae", "iwae/k5", "--datasets", "mnist_sample", "--mnist-epochs",
              "1", "--k", "4", "--iw-examples", "8", "--out", str(tmp_path), "--runs",
              str(tmp_path / "runs")]
    run("quality.py", *common, "--seeds", "0")
    rows = json.loads((tmp_path / "quality.json").read_text())
    assert [(r["row"], r["seeds"]) for r in rows] == [("dense_vae", 1), ("iwae/k5", 1)]
    assert all((r["iw_samples"], r["iw_examples"]) == (4, 8) for r in rows)
    assert rows[1]["commands"][0].startswith("python train.py --model iwae")
    assert rows[1]["commands"][0].endswith("--set model.k=5")

    # Finished runs are reused: a second seed trains only seed 1 of each row.
    log = run("quality.py", *common, "--seeds", "0", "1").stdout
    assert log.count("reusing") == 2 and log.count("$ python train.py") == 2  # seed 1 only
    dense, iwae = json.loads((tmp_path / "quality.json").read_text())
    assert dense["seeds"] == iwae["seeds"] == 2
    assert "--set train.seed=1" in dense["commands"][1]
    nll = [seed["iw_nll"] for seed in dense["per_seed"]]
    assert nll[0] != nll[1]  # the seeds are different runs
    assert dense["iw_nll"] == pytest.approx(np.mean(nll), abs=1e-9)
    assert dense["iw_nll_sd"] == pytest.approx(np.std(nll, ddof=1), abs=1e-9)
    assert dense["paper"] == 86.76
    assert "mnist_sample: iwae/k5 below dense_vae by" in (tmp_path / "quality.md").read_text()


def test_disentanglement_script(tmp_path):
    args = ["--rows", "beta_vae", "--seeds", "0", "--train-images", "256", "--epochs", "1",
            "--points", "50", "--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    run("disentanglement.py", *args)
    (row,) = json.loads((tmp_path / "disentanglement.json").read_text())
    assert row["row"] == "beta_vae" and row["seeds"] == 1
    for title in ("BetaVAE", "FactorVAE", "MIG", "DCI D", "DCI C", "DCI I", "SAP"):
        assert 0.0 <= row[title]["mean"] <= 1.0, title
    train, evaluate = row["commands"]
    assert train.startswith("python train.py --model beta_vae --dataset dsprites")
    assert "--set model.beta=4.0" in train and "--disentanglement-points 50" in evaluate
    assert "| beta_vae | 1 |" in (tmp_path / "disentanglement.md").read_text()
    (tmp_path / "disentanglement.json").unlink()
    run("disentanglement.py", *args, "--table-only")  # tabulates the finished run, trains nothing
    assert json.loads((tmp_path / "disentanglement.json").read_text()) == [row]


def test_serving_script(tmp_path):
    run("serving.py", "--calls", "10", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "serving.json").read_text())
    modes = ["none", "dynamic", "float16", "int8"]
    threads = sorted({1, os.cpu_count()})
    assert [r["format"] for r in rows] == ["SavedModel"] + [
        f"TFLite {mode}, {n} thread{'s' if n > 1 else ''}" for mode in modes for n in threads]
    assert [r["threads"] for r in rows[1:]] == threads * len(modes)
    assert all(r["batch1_ms"] > 0 and r["batch64_ms"] > 0 and r["bytes"] > 0 for r in rows)


def test_output_layer_script(tmp_path):
    run("output_layer.py", "--repeats", "2", "--rounds", "1", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "output_layer.json").read_text())
    assert {(r["layer"], r["channels"]) for r in rows} == {
        ("Conv2D", 1), ("Conv2DTranspose", 1), ("Conv2D", 3), ("Conv2DTranspose", 3)}
    assert all(r["ms_per_step"] > 0 for r in rows)


def test_multi_worker_script(tmp_path):
    run("multi_worker.py", "--model", "dense_vae", "--epochs", "1", "--rounds", "1",
        "--out", str(tmp_path))
    data = json.loads((tmp_path / "multi_worker.json").read_text())
    assert [r["setup"] for r in data["rows"]] == ["1 process", "2 workers"]
    assert all(r["train_images_per_second"] > 0 and r["cpu_seconds"] > 0 for r in data["rows"])
    assert data["parameters"] > 100_000 and data["all_reduce_ms"] > 0


def test_time_to_result_script(tmp_path):
    run("time_to_result.py", "--models", "dense_vae", "--epochs", "1", "--skip", "breakdown",
        "pythae", "--k", "3", "--eval-images", "2", "--rounds", "1", "--runs",
        str(tmp_path / "runs"), "--out", str(tmp_path))
    results = json.loads((tmp_path / "time_to_result.json").read_text())
    [row] = results["train"]
    assert row["model"] == "dense_vae" and row["timing"]["traces"] == {"train": 1, "test": 1}
    assert 0 < row["bare_steps"] < row["train_wall"] < row["process_wall"]
    estimators = [r["estimator"] for r in results["evaluation"]["rows"]]
    assert estimators == ["before (stock Conv2DTranspose output layer)", "after, float32",
                          "after, bfloat16 hidden layers"]
    assert results["evaluation"]["peak_gflops"] > 0
    assert {(r["decoder"], r["compiler"]) for r in results["evaluation"]["decoder_sweep"]} == {
        (d, c) for d in ("stock output layer", "tap output layer") for c in ("graph", "XLA")}
    assert "| dense_vae | 1 |" in (tmp_path / "time_to_result.md").read_text()
    # A part skipped later keeps its results and says so.
    run("time_to_result.py", "--skip", "train", "breakdown", "pythae", "eval", "--out",
        str(tmp_path))
    again = json.loads((tmp_path / "time_to_result.json").read_text())
    assert again["train"] == results["train"] and again["evaluation"] == results["evaluation"]
    assert again["kept"]["train"]["load_average_at_start"] == results["load_average_at_start"]
    assert "`train` is kept from an earlier run" in (tmp_path / "time_to_result.md").read_text()


def test_a_run_without_its_four_parts_writes_none_of_them_and_still_ends(tmp_path):
    run("train_without.py", "images", "checkpoints", "tensorboard", "validation", "--",
        "--model", "dense_vae", "--dataset", "mnist_sample", "--epochs", "1", "--set",
        "data.train_limit=256", "--set", "data.test_limit=64", "--set", "eval.iw_examples=2",
        "--set", "eval.pictures=false", "--run-dir", str(tmp_path / "run"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_epoch"] is None and metrics["timing"]["traces"] == {"train": 1}
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "tensorboard").iterdir()
                  if p.is_dir()) == ["evaluation"]  # no train, validation or images runs
