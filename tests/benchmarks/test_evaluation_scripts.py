"""The evaluation, serving and scale-out benchmark scripts run end to end with tiny settings and
write their tables; their numbers are the scripts' business (benchmarks/results/), never asserted
here."""

import json
import os

import pytest

from tests.benchmarks.script import run

pytestmark = pytest.mark.slow


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
    pictures = tmp_path / "runs" / "beta_vae" / "seed-0" / "pictures"
    assert not pictures.exists()
    # The table again from the finished run (training nothing), its pictures from the stored
    # scores, and a row measured before but not asked for now kept in the table's order.
    stored_vae = {**row, "row": "vae", "seeds": 3}
    (tmp_path / "disentanglement.json").write_text(json.dumps([stored_vae]))
    log = run("disentanglement.py", *args, "--table-only", "--pictures").stdout
    assert "$ python" not in log
    assert {p.name for p in pictures.iterdir()} == {"dci_importance.png", "factor_traversals.png"}
    assert json.loads((tmp_path / "disentanglement.json").read_text()) == [stored_vae, row]
    assert "| vae | 3 |" in (tmp_path / "disentanglement.md").read_text()


def test_serving_script(tmp_path):
    run("serving.py", "--calls", "10", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "serving.json").read_text())
    modes = ["none", "dynamic", "float16", "int8"]
    threads = sorted({1, os.cpu_count()})
    assert [r["format"] for r in rows] == ["SavedModel"] + [
        f"TFLite {mode}, {n} thread{'s' if n > 1 else ''}" for mode in modes for n in threads]
    assert [r["threads"] for r in rows[1:]] == threads * len(modes)
    assert all(r["batch1_ms"] > 0 and r["batch64_ms"] > 0 and r["bytes"] > 0 for r in rows)
    assert (tmp_path / "serving.png").stat().st_size > 0  # its plot, beside the table


def test_output_layer_script(tmp_path):
    run("output_layer.py", "--repeats", "2", "--rounds", "1", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "output_layer.json").read_text())
    assert {(r["layer"], r["channels"]) for r in rows} == {
        ("Conv2D", 1), ("Conv2DTranspose", 1), ("Conv2D", 3), ("Conv2DTranspose", 3)}
    assert all(r["ms_per_step"] > 0 for r in rows)


def test_multi_worker_script(tmp_path):
    run("multi_worker.py", "--model", "dense_vae", "--epochs", "1", "--rounds", "1",
        "--setups", "1", "2-alone", "--out", str(tmp_path))  # the workers: in --profile below
    data = json.loads((tmp_path / "multi_worker.json").read_text())
    assert [r["setup"] for r in data["rows"]] == ["1 process", "2 processes alone (no all-reduce)"]
    assert all(r["train_images_per_second"] > 0 and r["cpu_seconds"] > 0 for r in data["rows"])
    one, apart = data["rows"]
    # each process alone trains the whole sample at the per-process batch, as 1 process does
    assert apart["test_elbo"] < 0 and apart["step_ms"] > 0
    assert apart["images_per_cpu_second"] < 2.5 * one["images_per_cpu_second"]
    assert data["parameters"] > 100_000
    assert set(data["all_reduce_ms"]) == {"float32", "bfloat16"}
    assert all(ms > 0 for ms in data["all_reduce_ms"].values())
    assert data["summary"][0]["speed_up"] == 1.0


def test_multi_worker_profile_breaks_every_workers_traced_steps_down(tmp_path):
    run("multi_worker.py", "--model", "dense_vae", "--epochs", "1", "--profile",
        "--profile-steps", "2", "5", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "multi_worker_profile.json").read_text())["rows"]
    assert [sorted(r["profile"]) for r in rows] == [["worker0"], ["worker0", "worker1"]]
    for row in rows:
        for parts in row["profile"].values():
            assert parts["steps"] == 3
            shares = sum(parts[f"{c}_ms"] for c in ("compute", "collectives", "input",
                                                     "tf.function call", "host Python"))
            assert abs(shares - parts["step_ms"]) < 0.05  # every instant counted once
            assert parts["compute_ms"] > 0
    assert all(p["collectives_ms"] > 0 for p in rows[1]["profile"].values())
    assert rows[0]["profile"]["worker0"]["collectives_ms"] == 0
    assert all(r["timing"]["train_steps"] > 0 for r in rows)  # the whole training's parts too


def test_allocator_script(tmp_path):
    run("allocator.py", "--workers", "1", "--steps", "2", "--rounds", "1", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "allocator.json").read_text())
    assert [(r["workers"], r["allocator"]) for r in rows] == [(1, "system"), (1, "kept")]
    for r in rows:
        assert r["step_ms"] > 0 and r["cpu_ms_per_step"] > 0 and r["peak_rss_mb"] > 100
        assert r["minor_faults_per_step"] >= 0 and len(r["rounds"]) == 1
    assert "| 1 | freed memory kept (keep_freed_memory) |" in (tmp_path / "allocator.md").read_text()
