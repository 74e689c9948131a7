"""What multi-worker training costs on one machine: 1 process against 2 workers on loopback, each
held to one core (`taskset`), and the time of the all-reduce every step adds.

    python benchmarks/multi_worker.py [--model conv_vae] [--epochs 3] [--rounds 2]
                                      [--per-worker-batch 128] [--setups ...]
    python benchmarks/multi_worker.py --profile --epochs 1 [--profile-steps 5 16]

Every setup trains the same `train.py` run (the embedded MNIST sample, same global batch and
seed); the workers get their TF_CONFIG from this script, as a cluster would give it. `--setups`
picks among 1 process on one core, 2 workers on one core each, the same with the gradients summed
in bfloat16 (`train.all_reduce_dtype`), 1 process on both cores, and 2 processes that train
apart at the per-worker batch, one per core (the ceiling: what 2 workers would give if the
all-reduce cost nothing). The rounds interleave the setups. Training images/s is over the whole training (`train_seconds` of metrics.json, the
first epoch's tracing included); CPU seconds are those of every process of the setup, start-up
and evaluation included. The all-reduce time is measured
apart, in 2 workers that sum a tensor the size of the model's gradients 50 times.
Writes benchmarks/results/multi_worker.{md,json}.

`--per-worker-batch N` compares the setups at the same batch per process instead (the way users
add workers: 1 process trains batches of N, 2 workers global batches of 2N), into
benchmarks/results/multi_worker_per_worker_batch.{md,json}.

`--profile` trains each setup once with a TensorFlow profiler trace of global steps 9-18
(`train.profile_steps`, after the tracing of both step functions (a worker's first synced step,
its 8th, traces the second) and the kernels' warm-up, inside the first epoch at global batches
up to 256) and breaks every worker's trace down
(benchmarks/trace_breakdown.py): each instant of the steps goes to the first of compute (op
kernels other than collectives: convolutions, matmuls, element-wise ops, their gradients, the
optimizer), collectives (`CollectiveReduceV2` from its start to its done callback, so waiting
inside it for the peer counts, and the collective executor's own events), input (tf.data and the
iterator's GetNext), tf.function call (the rest of the main thread's TensorFlow events: the call
and its executor before and between kernels) and host Python (nothing of TensorFlow running: the
loop, callbacks, or the process waiting for its core) that is active on any thread. Per worker,
the mean per step from the end of the first traced step to the end of the last; beside it, how
long the collectives waited for the peer (the workers' traces share a clock). A second table
gives where the chief's whole training went (`timing` of metrics.json: the steps after the
first, the first step, the iterators, validation, callbacks): the steps are not all of it. Writes
benchmarks/results/multi_worker_profile.{md,json}.
"""

import argparse
import json
import math
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
from benchmarks.trace_breakdown import CATEGORIES  # noqa: E402
from benchmarks.trace_breakdown import add_peer_waits  # noqa: E402
from benchmarks.trace_breakdown import breakdown  # noqa: E402
from benchmarks.trace_breakdown import worker_traces  # noqa: E402

ALL_REDUCE = textwrap.dedent("""
    import json, sys, time
    from vae_zoo.distribute import multi_worker_strategy
    strategy = multi_worker_strategy()
    import tensorflow as tf
    # float32 counts and how many times to time each (every worker must run the same collectives)
    sizes = [int(s) for s in sys.argv[1].split(",")]
    repeats = [int(r) for r in sys.argv[2].split(",")]
    repeats = repeats * len(sizes) if len(repeats) == 1 else repeats
    dtype = sys.argv[3] if len(sys.argv) > 3 else "float32"

    def step(size):
        def replica_sum():
            gradients = tf.ones([size], dtype)  # the size of the model's gradients
            return tf.distribute.get_replica_context().all_reduce("SUM", gradients)
        return strategy.run(replica_sum)

    step = tf.function(step)
    medians = {}
    for size, count in zip(sizes, repeats):
        step(size)  # warm-up: traces and builds the collective
        times = []
        for _ in range(count):
            start = time.perf_counter()
            step(size)
            times.append(time.perf_counter() - start)
        medians[str(size)] = 1e3 * sorted(times)[len(times) // 2]
    print(json.dumps({"median_ms": medians[str(sizes[0])], "by_size": medians}))
""")


# Each setup: (its name in the tables, processes, the cores each is held to, config overrides).
SETUPS = {
    "1": ("1 process", 1, ["0"], []),
    "2": ("2 workers", 2, ["0", "1"], []),
    "2-bf16": ("2 workers, bfloat16 all-reduce", 2, ["0", "1"],
               ["train.all_reduce_dtype=bfloat16"]),
    "1-2cores": ("1 process on 2 cores", 1, ["0,1"], []),
    "2-alone": ("2 processes alone (no all-reduce)", 2, ["0", "1"], []),
}
# Setups whose processes train apart, each its own run at the per-process batch: what 2 cores
# give 2 processes that never talk, the ceiling of 2 workers on this machine (two cores of a VM
# may share a physical core, its caches or memory bandwidth).
APART = {"2-alone"}
DEFAULT_SETUPS = ["1", "2"]


def pinned(cores, command):
    return (["taskset", "-c", str(cores)] if shutil.which("taskset") else []) + command


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


def loopback_workers(n):
    """How `n` workers run on loopback: `(commands(command), envs)`, worker i held to core i."""
    return (lambda command: [pinned(i, command) for i in range(n)]), cluster_envs(n)


def train_once(setup, model, epochs, batch_size, folder, profile_steps=None, workers=None,
               extra=(), dataset="mnist_sample"):
    """One training run of `setup`: its row of the table; with `profile_steps` (`[first,
    last]`), also the breakdown of every worker's trace of those steps (`profile`); `dataset` is
    a train.py `--dataset`. `workers`
    says how 2 workers run (default `loopback_workers(2)`; benchmarks/network.py puts them in
    network namespaces); `extra` are more train.py arguments. The row's `step_ms` is the mean
    training step after the first (`timing` of metrics.json)."""
    run = Path(tempfile.mkdtemp(dir=folder)) / "run"
    command = [sys.executable, "train.py", "--model", model, "--dataset", dataset,
               "--epochs", str(epochs), "--batch-size", str(batch_size), "--run-dir", str(run),
               "--set", "eval.iw_samples=2", "--set", "eval.iw_examples=64",
               "--set", "eval.pictures=false", "--set", "data.test_limit=256",
               "--set", "train.precision=float32", *extra]
    if profile_steps:
        command += ["--set", f"train.profile_steps={list(profile_steps)}"]
    label, processes, cores, overrides = SETUPS[setup]
    for override in overrides:
        command += ["--set", override]
    if setup in APART:
        return apart_once(label, command, cores, run, batch_size // processes)
    if processes == 1:
        wall, cpu, _ = run_processes([pinned(cores[0], command)], [dict(os.environ)])
    else:
        commands, envs = workers or loopback_workers(processes)
        wall, cpu, _ = run_processes(commands(command + ["--strategy", "multi_worker"]), envs)
    with open(run / "history.csv") as f:
        epochs_done = len(f.read().splitlines()) - 1
    metrics = json.loads((run / "metrics.json").read_text())
    images = metrics["sizes"]["train"] * epochs_done
    row = {"setup": label, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
           "train_seconds": metrics["train_seconds"],
           "train_images_per_second": round(images / metrics["train_seconds"], 1),
           "images_per_cpu_second": round(images / cpu, 1),
           "test_elbo": round(metrics["test"].get("elbo", float("nan")), 2)}
    steps = epochs_done * math.ceil(metrics["sizes"]["train"] / batch_size)
    if "train_steps" in metrics.get("timing", {}) and steps > 1:
        row["step_ms"] = round(1e3 * metrics["timing"]["train_steps"] / (steps - 1), 2)
    if profile_steps:
        row["profile"] = add_peer_waits({worker: breakdown(trace) for worker, trace
                                         in worker_traces(run / "profile").items()})
        row["timing"] = metrics["timing"]
    return row


def apart_once(label, command, cores, run, batch_size):
    """Each process trains its own run at `batch_size` on its own core, all at once; the row
    sums their images/s (what they would give as workers if the all-reduce cost nothing)."""
    runs = [run.parent / f"run{i}" for i in range(len(cores))]
    commands = [pinned(core, command[:command.index("--run-dir") + 1] + [str(r)]
                       + command[command.index("--run-dir") + 2:]
                       + ["--batch-size", str(batch_size)]) for core, r in zip(cores, runs)]
    wall, cpu, _ = run_processes(commands, [dict(os.environ)] * len(cores))
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    with open(runs[0] / "history.csv") as f:
        epochs_done = len(f.read().splitlines()) - 1
    images = [m["sizes"]["train"] * epochs_done for m in metrics]
    row = {"setup": label, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
           "train_seconds": max(m["train_seconds"] for m in metrics),
           "train_images_per_second": round(sum(i / m["train_seconds"]
                                                for i, m in zip(images, metrics)), 1),
           "images_per_cpu_second": round(sum(images) / cpu, 1),
           "test_elbo": round(statistics.mean(m["test"]["elbo"] for m in metrics), 2)}
    steps = epochs_done * math.ceil(metrics[0]["sizes"]["train"] / batch_size)
    if steps > 1:
        row["step_ms"] = round(statistics.mean(1e3 * m["timing"]["train_steps"] / (steps - 1)
                                               for m in metrics), 2)
    return row


def all_reduce_ms(size, repeats=50, workers=None, dtype="float32"):
    """Median ms of 2 workers' all-reduce of `size` values of `dtype`; with lists of sizes and repeats,
    `{str(size): median ms}` of each (one pair of workers times them in turn)."""
    many = isinstance(size, (list, tuple))
    sizes, repeats = (size, repeats) if many else ([size], [repeats])
    commands, envs = workers or loopback_workers(2)
    command = [sys.executable, "-c", ALL_REDUCE, ",".join(map(str, sizes)),
               ",".join(map(str, repeats)), dtype]
    _, _, stdouts = run_processes(commands(command), envs)
    result = json.loads(stdouts[0].strip().splitlines()[-1])
    return result["by_size"] if many else result["median_ms"]


def count_params(model_name):
    """Trainable parameters of a zoo model built for 28x28x1 labelled images (cvae needs the
    labels, beta_tcvae the training set's size): the float32 its gradient all-reduce sums."""
    from vae_zoo.config import RunConfig
    from vae_zoo.config import load_zoo_config
    from vae_zoo.data import DataSpec

    spec = DataSpec((28, 28, 1), num_classes=10, train_size=60000)
    model = RunConfig.from_dict(load_zoo_config(model_name)).model.build(spec)
    return int(sum(w.numpy().size for w in model.trainable_weights))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="conv_vae")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="mnist_sample",
                        help="train.py's --dataset (fashion_mnist: 60,000 images an epoch, where "
                             "the run's fixed costs weigh less than on the 5,000 of the sample)")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch")
    parser.add_argument("--per-worker-batch", type=int,
                        help="each process's batch instead (the global batch grows with workers)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--setups", nargs="+", default=DEFAULT_SETUPS, choices=list(SETUPS),
                        help="what to compare: " + "; ".join(
                            f"{key}: {value[0]}" for key, value in SETUPS.items())
                        + " (default: %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="trace --profile-steps of one run of each setup and break them down")
    parser.add_argument("--profile-steps", type=int, nargs=2, default=[9, 18],
                        metavar=("FIRST", "LAST"), help="global steps to trace (default 9 18)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    per_worker = args.per_worker_batch
    batch_of = {setup: (per_worker * SETUPS[setup][1] if per_worker else args.batch_size)
                for setup in args.setups}
    if args.profile:
        return profile(args, batch_of)
    folder = tempfile.mkdtemp(prefix="multi-worker-bench-")
    rows = []
    try:
        for round_ in range(args.rounds):
            for setup in args.setups:
                row = train_once(setup, args.model, args.epochs, batch_of[setup], folder,
                                 dataset=args.dataset)
                rows.append({"round": round_ + 1, "batch_size": batch_of[setup], **row})
                print(row, flush=True)
        params = count_params(args.model)
        reduce_ms = {dtype: all_reduce_ms(params, dtype=dtype) for dtype in ("float32", "bfloat16")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    summary = []
    for setup in args.setups:
        mine = [r for r in rows if r["setup"] == SETUPS[setup][0]]
        summary.append({
            "setup": SETUPS[setup][0],
            "train_images_per_second": statistics.median(r["train_images_per_second"] for r in mine),
            "images_per_cpu_second": statistics.median(r["images_per_cpu_second"] for r in mine),
            "wall_seconds": statistics.median(r["wall_seconds"] for r in mine),
            "test_elbo": statistics.median(r["test_elbo"] for r in mine),
        })
    base = summary[0]["train_images_per_second"]
    for row in summary:
        row["speed_up"] = round(row["train_images_per_second"] / base, 2)
    batches = (f"batch {per_worker} per process (global {2 * per_worker} for 2 workers)"
               if per_worker else f"global batch {args.batch_size}")
    data = ("the embedded MNIST sample" if args.dataset == "mnist_sample"
            else f"`--dataset {args.dataset}`")
    lines = [
        f"{args.model}, {args.epochs} epochs of {data}, {batches}; "
        f"processes held to their cores with taskset; median of {args.rounds} interleaved "
        f"rounds ({platform.processor() or platform.machine()}, {os.cpu_count()} cores).", "",
        f"| setup | train images/s | against {summary[0]['setup']} | images per CPU-second | "
        "wall s (incl. start-up, evaluation) | test ELBO (256 images) |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {s['setup']} | {s['train_images_per_second']:.0f} | {s['speed_up']:.2f}x | "
              f"{s['images_per_cpu_second']:.0f} | {s['wall_seconds']:.0f} | "
              f"{s['test_elbo']:.2f} |" for s in summary]
    lines += ["", f"All-reduce of the gradients ({params:,} values, RING over loopback, 2 workers), "
              "ms: " + ", ".join(f"{ms:.2f} in {dtype}" for dtype, ms in reduce_ms.items()) + "."]
    name = "multi_worker_per_worker_batch" if per_worker else "multi_worker"
    if args.dataset != "mnist_sample":
        name += f"_{args.dataset}"
    write_results(args.out, name, "\n".join(lines),
                  {"rows": rows, "summary": summary, "parameters": params,
                   "all_reduce_ms": reduce_ms, "epochs": args.epochs, "dataset": args.dataset,
                   "batch_size": args.batch_size, "per_worker_batch": per_worker})


def profile(args, batch_of):
    """`--profile`: one traced run of each setup, and the breakdown of its steps per worker."""
    folder = tempfile.mkdtemp(prefix="multi-worker-profile-")
    try:
        rows = []
        for setup in args.setups:
            row = train_once(setup, args.model, args.epochs, batch_of[setup], folder,
                             profile_steps=args.profile_steps)
            rows.append({"batch_size": batch_of[setup], **row})
            print(row, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    first, last = args.profile_steps
    lines = [
        f"{args.model}, embedded MNIST sample, each process held to one core; mean per step of "
        f"global steps {first + 1}-{last} (traced {first}-{last}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores). "
        "ms per step (share of the step).", "",
        "| setup | batch (global) | worker | step ms | " + " | ".join(CATEGORIES)
        + " | of collectives: waiting for the peer |",
        "|---|---|---|---|" + "---|" * (len(CATEGORIES) + 1),
    ]
    for row in rows:
        for worker, parts in row["profile"].items():
            shares = [f"{parts[f'{c}_ms']:.1f} ({parts[f'{c}_ms'] / parts['step_ms']:.0%})"
                      for c in CATEGORIES]
            lines.append(f"| {row['setup']} | {row['batch_size']} | {worker} | "
                         f"{parts['step_ms']:.1f} | " + " | ".join(shares)
                         + f" | {parts['peer_wait_ms']:.1f} |")
    lines += ["", "Where the whole training went (the chief's `timing` of metrics.json, "
              "seconds; the traced steps are slower than the others by the profiler's cost):", "",
              "| setup | train s | steps after the first | first step (tracing, first "
              "collectives) | data (making and reading iterators) | validation | callbacks | "
              "other (writing the trace included) |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        t = row["timing"]
        parts = [t["train_steps"], t["first_train_step"], t["data"],
                 t.get("first_test_step", 0) + t.get("validation_steps", 0),
                 sum(v for k, v in t.items() if k.startswith("callback/"))]
        parts.append(row["train_seconds"] - sum(parts))
        lines.append(f"| {row['setup']} | {row['train_seconds']:.1f} | "
                     + " | ".join(f"{seconds:.1f}" for seconds in parts) + " |")
    name = "multi_worker_profile" + ("_per_worker_batch" if args.per_worker_batch else "")
    write_results(args.out, name, "\n".join(lines),
                  {"rows": rows, "profile_steps": args.profile_steps, "epochs": args.epochs,
                   "batch_size": args.batch_size, "per_worker_batch": args.per_worker_batch})


if __name__ == "__main__":
    main()
