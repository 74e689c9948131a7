"""What keeping freed memory (`vae_zoo.training.allocator.keep_freed_memory`) does to a training
step: conv_vae's step with glibc's default malloc and with the fix, side by side.

    python benchmarks/allocator.py                     # 1 process and 2 loopback workers, 2 rounds
    python benchmarks/allocator.py --workers 2 --steps 40 --rounds 3

Each run is fresh processes (one per worker, each held to its own core with `taskset`) that build
conv_vae from its zoo config, compile it under the strategy `train.py` would use
(MultiWorkerMirroredStrategy for 2 workers) and runs its `train_step` under `strategy.run` on a
distributed iterator of the embedded MNIST sample, as the training loop does (128 images per
worker, float32): 5 warm-up steps, then `--steps` timed ones. Per step, on the
chief: wall ms, CPU ms of the process (all its threads) and minor page faults (`getrusage`);
and the process's peak resident memory. The two allocators alternate within each round, so a
machine's drift touches both. Writes benchmarks/results/allocator.{md,json}.
"""

import argparse
import json
import os
import statistics
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402
from benchmarks.multi_worker import loopback_workers  # noqa: E402
from benchmarks.multi_worker import pinned  # noqa: E402
from benchmarks.multi_worker import run_processes  # noqa: E402

WORKER = textwrap.dedent("""
    import json, os, resource, sys, time
    allocator, workers, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if allocator == "kept":
        from vae_zoo.training.allocator import keep_freed_memory
        assert keep_freed_memory()
    if workers > 1:
        from vae_zoo.distribute import multi_worker_strategy
        strategy = multi_worker_strategy()
    import numpy as np
    import tensorflow as tf
    if workers == 1:
        strategy = tf.distribute.get_strategy()
    from vae_zoo.config import RunConfig, load_zoo_config
    from vae_zoo.data import DataSpec
    from vae_zoo.data.sources.mnist import EMBEDDED_MNIST
    with np.load(EMBEDDED_MNIST) as data:
        x = (data["x_train"][..., None] / 255.0).astype("float32")
    config = RunConfig.from_dict(load_zoo_config("conv_vae"))
    with strategy.scope():
        model = config.model.build(DataSpec((28, 28, 1), train_size=len(x)), precision="float32")
        model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    dataset = tf.data.Dataset.from_tensor_slices({"x": x}).repeat().batch(batch * workers)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))

    @tf.function
    def step():  # the training loop's step (vae_zoo/training/loop.py): the model's own train_step
        strategy.run(model.train_step, args=(next(batches),))
        return tf.convert_to_tensor(model.steps_trained)

    for _ in range(5):  # tracing, first collectives
        step().numpy()
    usage, cpu, start = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    for _ in range(steps):
        step().numpy()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"step_ms": 1e3 * wall / steps,
                      "cpu_ms_per_step": 1e3 * (time.process_time() - cpu) / steps,
                      "minor_faults_per_step": (after.ru_minflt - usage.ru_minflt) / steps,
                      "peak_rss_mb": after.ru_maxrss / 1024}))
""")
ALLOCATORS = {"system": "glibc's defaults",
              "kept": "freed memory kept (keep_freed_memory)"}


def run_once(allocator, workers, steps, batch):
    args = [sys.executable, "-c", WORKER, allocator, str(workers), str(steps), str(batch)]
    if workers == 1:
        commands, envs = [pinned(0, args)], [dict(os.environ)]
    else:
        make, envs = loopback_workers(workers)
        commands = make(args)
    _, _, outputs = run_processes(commands, envs)
    return json.loads(outputs[0].strip().splitlines()[-1])  # the chief's


def table(rows, args):
    lines = [f"conv_vae, {args.batch} images per process and step, float32, `train_step` under "
             f"`strategy.run` on a distributed iterator of the embedded MNIST sample; "
             f"{args.steps} steps after 5 warm-up ones, each process held to one core; median "
             f"over {args.rounds} interleaved rounds (the chief's numbers).",
             "", "| processes | allocator | step ms | CPU ms per step | minor page faults per step "
             "| peak RSS MB |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {ALLOCATORS[r['allocator']]} | {r['step_ms']:.1f} | "
                     f"{r['cpu_ms_per_step']:.1f} | {r['minor_faults_per_step']:,.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], choices=[1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=128, help="images per process and step")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    runs = {}
    for round_ in range(args.rounds):
        for workers in args.workers:
            for allocator in ALLOCATORS:
                result = run_once(allocator, workers, args.steps, args.batch)
                print(f"round {round_ + 1}, {workers} process(es), {allocator}: {result}",
                      flush=True)
                runs.setdefault((workers, allocator), []).append(result)
    rows = [{"workers": workers, "allocator": allocator, "rounds": results,
             **{key: statistics.median(r[key] for r in results) for key in results[0]}}
            for (workers, allocator), results in runs.items()]
    write_results(args.out, "allocator", table(rows, args), rows)


if __name__ == "__main__":
    main()
