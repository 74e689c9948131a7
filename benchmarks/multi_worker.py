"""What multi-worker training costs on one machine: 1 process against 2 workers on loopback, each
held to one core (`taskset`), and the time of the all-reduce every step adds.

    python benchmarks/multi_worker.py [--model conv_vae] [--epochs 3] [--rounds 2]

Both train the same `train.py` run (the embedded MNIST sample, same global batch and seed); the
workers get their TF_CONFIG from this script, as a cluster would give it. The rounds interleave the
two setups. Training images/s is over the whole training (`train_seconds` of metrics.json, the
first epoch's tracing included); CPU seconds are those of every process of the setup, start-up
and evaluation included. The all-reduce time is measured
apart, in 2 workers that sum a tensor the size of the model's gradients 50 times.
Writes benchmarks/results/multi_worker.{md,json}.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

ALL_REDUCE = textwrap.dedent("""
    import json, sys, time
    from vae_zoo.distribute import multi_worker_strategy
    strategy = multi_worker_strategy()
    import tensorflow as tf
    size, repeats = int(sys.argv[1]), int(sys.argv[2])

    def replica_sum():
        gradients = tf.ones([size])  # the size of the model's gradients
        return tf.distribute.get_replica_context().all_reduce("SUM", gradients)

    @tf.function
    def step():
        return strategy.run(replica_sum)

    step()  # warm-up: builds the collective
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_ms": 1e3 * sorted(times)[len(times) // 2]}))
""")


def pinned(core, command):
    return (["taskset", "-c", str(core)] if shutil.which("taskset") else []) + command


def run_processes(commands, envs):
    """Runs the commands together; returns (wall seconds, CPU seconds of all, their stdouts)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    processes = [subprocess.Popen(c, cwd=ROOT, env=e, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for c, e in zip(commands, envs)]
    outputs = [p.communicate(timeout=3600) for p in processes]
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for p, (_, stderr) in zip(processes, outputs):
        if p.returncode != 0:
            raise RuntimeError(stderr[-3000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, [stdout for stdout, _ in outputs]


def cluster_envs(n):
    from vae_zoo.distribute.cluster import make_tf_config
    from vae_zoo.distribute.launcher import free_ports

    addresses = [f"127.0.0.1:{port}" for port in free_ports(n)]
    return [{**os.environ, "TF_CONFIG": make_tf_config(addresses, i)} for i in range(n)]


def train_once(setup, model, epochs, batch_size, folder):
    run = Path(tempfile.mkdtemp(dir=folder)) / "run"
    command = [sys.executable, "train.py", "--model", model, "--dataset", "mnist_sample",
               "--epochs", str(epochs), "--batch-size", str(batch_size), "--run-dir", str(run),
               "--set", "eval.iw_samples=2", "--set", "eval.iw_examples=64",
               "--set", "eval.pictures=false", "--set", "data.test_limit=256",
               "--set", "train.precision=float32"]
    if setup == "1 process":
        wall, cpu, _ = run_processes([pinned(0, command)], [dict(os.environ)])
    else:
        envs = cluster_envs(2)
        wall, cpu, _ = run_processes(
            [pinned(i, command + ["--strategy", "multi_worker"]) for i in range(2)], envs)
    with open(run / "history.csv") as f:
        epochs_done = len(f.read().splitlines()) - 1
    metrics = json.loads((run / "metrics.json").read_text())
    images = metrics["sizes"]["train"] * epochs_done
    return {"setup": setup, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "train_seconds": metrics["train_seconds"],
            "train_images_per_second": round(images / metrics["train_seconds"], 1),
            "images_per_cpu_second": round(images / cpu, 1)}


def all_reduce_ms(size, repeats=50):
    envs = cluster_envs(2)
    command = [sys.executable, "-c", ALL_REDUCE, str(size), str(repeats)]
    _, _, stdouts = run_processes([pinned(i, command) for i in range(2)], envs)
    return json.loads(stdouts[0].strip().splitlines()[-1])["median_ms"]


def count_params(model_name):
    from vae_zoo.config import RunConfig
    from vae_zoo.config import load_zoo_config
    from vae_zoo.data import DataSpec

    model = RunConfig.from_dict(load_zoo_config(model_name)).model.build(DataSpec((28, 28, 1)))
    return int(sum(w.numpy().size for w in model.trainable_weights))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="conv_vae")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="multi-worker-bench-")
    rows = []
    try:
        for round_ in range(args.rounds):
            for setup in ("1 process", "2 workers"):
                row = train_once(setup, args.model, args.epochs, args.batch_size, folder)
                rows.append({"round": round_ + 1, **row})
                print(row, flush=True)
        params = count_params(args.model)
        reduce_ms = all_reduce_ms(params)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    summary = []
    for setup in ("1 process", "2 workers"):
        mine = [r for r in rows if r["setup"] == setup]
        summary.append({
            "setup": setup,
            "train_images_per_second": statistics.median(r["train_images_per_second"] for r in mine),
            "images_per_cpu_second": statistics.median(r["images_per_cpu_second"] for r in mine),
            "wall_seconds": statistics.median(r["wall_seconds"] for r in mine),
        })
    steps_per_second = summary[1]["train_images_per_second"] / args.batch_size
    lines = [
        f"{args.model}, {args.epochs} epochs of the embedded MNIST sample, global batch "
        f"{args.batch_size}, each process held to one core; median of {args.rounds} interleaved "
        f"rounds ({platform.processor() or platform.machine()}, {os.cpu_count()} cores).", "",
        "| setup | train images/s | images per CPU-second | wall s (incl. start-up, evaluation) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s['setup']} | {s['train_images_per_second']:.0f} | "
              f"{s['images_per_cpu_second']:.0f} | {s['wall_seconds']:.0f} |" for s in summary]
    lines += ["", f"All-reduce of the gradients ({params:,} float32, RING over loopback, 2 workers): "
              f"{reduce_ms:.2f} ms per step, against {1e3 / steps_per_second:.0f} ms per "
              f"2-worker step."]
    write_results(args.out, "multi_worker", "\n".join(lines),
                  {"rows": rows, "summary": summary, "parameters": params,
                   "all_reduce_ms": reduce_ms, "epochs": args.epochs,
                   "batch_size": args.batch_size})


if __name__ == "__main__":
    main()
