"""The training benchmark scripts (throughput, quality, time to result, the run without its parts)
run end to end with tiny settings and write their tables. Their numbers are the scripts' business
(benchmarks/results/), never asserted here. Split from the evaluation scripts' file so that the
two test processes (`--dist loadfile`) share the slow benchmark runs."""

import json
import os

import numpy as np
import pytest

from tests.benchmarks.script import REPO
from tests.benchmarks.script import run

pytestmark = pytest.mark.slow


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
    common = ["--datasets", "mnist_sample", "--mnist-epochs", "1", "--k", "4", "--iw-examples",
              "8", "--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    run("quality.py", "--rows", "dense_vae", "iwae/k5", *common, "--seeds", "0")
    rows = json.loads((tmp_path / "quality.json").read_text())
    assert [(r["row"], r["seeds"]) for r in rows] == [("dense_vae", 1), ("iwae/k5", 1)]
    assert all((r["iw_samples"], r["iw_examples"]) == (4, 8) for r in rows)
    assert rows[1]["commands"][0].startswith("python train.py --model iwae")
    assert rows[1]["commands"][0].endswith("--set model.k=5")

    # Finished runs are reused: a second seed of one row trains only its seed 1, and the row
    # not asked for keeps its stored result.
    log = run("quality.py", "--rows", "dense_vae", *common, "--seeds", "0", "1").stdout
    assert log.count("reusing") == 1 and log.count("$ python train.py") == 1  # seed 1 only
    dense, iwae = json.loads((tmp_path / "quality.json").read_text())
    assert dense["seeds"] == 2 and iwae == rows[1]
    assert "--set train.seed=1" in dense["commands"][1]
    nll = [seed["iw_nll"] for seed in dense["per_seed"]]
    assert nll[0] != nll[1]  # the seeds are different runs
    assert dense["iw_nll"] == pytest.approx(np.mean(nll), abs=1e-9)
    assert dense["iw_nll_sd"] == pytest.approx(np.std(nll, ddof=1), abs=1e-9)
    assert dense["paper"] == 86.76
    assert "mnist_sample: iwae/k5 below dense_vae by" in (tmp_path / "quality.md").read_text()
    assert (tmp_path / "quality.png").stat().st_size > 0  # its plot, beside the table


def test_time_to_result_script(tmp_path):
    run("time_to_result.py", "--models", "dense_vae", "--epochs", "1", "--skip", "breakdown",
        "pythae", "--k", "3", "--eval-images", "2", "--sweep-rows", "64", "256", "--rounds", "1",
        "--runs", str(tmp_path / "runs"), "--out", str(tmp_path))
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
    assert (tmp_path / "time_to_result.png").stat().st_size > 0  # its plot, beside the table


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


def test_input_pipeline_script(tmp_path):
    run("input_pipeline.py", "--sizes", "60", "--small-epochs", "1", "--baseline", "",
        "--root", str(tmp_path / "root"), "--out", str(tmp_path))
    data = json.loads((tmp_path / "input_pipeline.json").read_text())
    assert [r["run"] for r in data["rows"]] == [
        "prepare (first load)", "pipeline alone, streamed", "train, streamed",
        "train, in memory (uint8)"]
    assert all(r["peak_rss_mb"] > 100 and r["cpu_s"] > 0 for r in data["rows"])
    assert data["rows"][1]["epoch_images"] == 51  # 60 images: 6 test, 3 validation held out
    assert all(r["train_images_per_s"] > 0 for r in data["rows"][2:])
    assert len(list((tmp_path / "root" / "png60").glob("*.png"))) == 60
    assert "| 60 | train, streamed |" in (tmp_path / "input_pipeline.md").read_text()


def test_generation_script(tmp_path):
    common = ["--models", "dense_vae", "--datasets", "mnist_sample", "--mnist-epochs", "1",
              "--seeds", "0", "--quality-images", "100", "--samplers", "gmm", "maf",
              "--sampler-steps", "20", "--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    stored = json.loads((REPO / "benchmarks/results/generation.json").read_text())
    (ae,) = [r for r in stored if (r["dataset"], r["model"]) == ("fashion_mnist", "ae")]
    (tmp_path / "generation.json").write_text(json.dumps([ae]))  # a row measured before
    log = run("generation.py", *common).stdout
    assert log.count("$ python -m vae_zoo.sample") == 2
    dense, kept = json.loads((tmp_path / "generation.json").read_text())
    assert kept == ae  # rows not asked for keep their stored results, in the table's order
    assert dense["model"] == "dense_vae" and dense["quality_images"] == 100
    for column in ("prior", "gmm", "maf"):
        seed = dense["per_seed"][0][column]
        assert seed["fd"] > 0 and 0 <= seed["precision"] <= 1 and 0 <= seed["recall"] <= 1
        assert dense[f"{column}_fd"] == seed["fd"]
    assert dense["two_stage_fd"] is None  # not asked for: '–' in the table
    assert dense["best"] in ("prior", "gmm", "maf")
    assert any(c.endswith("--sampler maf --n 36 --steps 20") for c in dense["commands"])
    assert "mnist_sample: dense_vae: gmm below prior by" in (tmp_path / "generation.md").read_text()
    for png in ("generation.png", "generation_samples.png"):
        assert (tmp_path / png).stat().st_size > 0
    pictures = tmp_path / "runs/mnist_sample/dense_vae/seed-0/pictures"
    assert {p.name for p in pictures.glob("samples_*.png")} == {"samples_gmm.png",
                                                                "samples_maf.png"}

    log = run("generation.py", *common, "--table-only").stdout
    assert "$ python" not in log  # tabulated from the finished runs
