"""Training throughput (images/s) and peak memory of every zoo model beside the keras.io recipe.

    python benchmarks/throughput.py [--rounds 5] [--dataset fashion_mnist]

Throughput: all models live in one process and train one epoch each in turn (A B C ... A B C ...),
so that the noise of a shared machine hits every model alike; after one warm-up round (tracing,
XLA compilation, caches) the table gives the median over `--rounds`, and the median over the
epochs in which the process had the whole machine (see benchmarks/README.md for why). Same images, batch size (128)
and machine for all; each model is fed the way its authors feed it (keras.io: a NumPy array to
`fit`; the zoo: its tf.data pipeline). Peak memory: each model trains one epoch alone in a fresh
worker process, which reports its peak RSS. Writes benchmarks/results/throughput.{md,json}.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402
BATCH_SIZE = 128
# An epoch counts as "full machine" when the process kept this fraction of the cores busy.
FULL_MACHINE = 0.75

# name -> (what it is, zoo model or None for the baseline, config overrides)
CANDIDATES = {
    "keras_io_recipe": ("keras.io conv VAE, Keras defaults (XLA off on CPU)", None, []),
    "conv_vae_keras_io_arch": (
        "conv_vae with the recipe's architecture (conv 32/64, dense 16, latent 2)", "conv_vae",
        ["model.hidden_units=[16]", "model.latent_dim=2", "train.precision=float32"]),
    "conv_vae_keras_io_arch_bf16": (
        "the same in mixed bfloat16 (train.precision=mixed_bfloat16)", "conv_vae",
        ["model.hidden_units=[16]", "model.latent_dim=2", "train.precision=mixed_bfloat16"]),
    "conv_vae": ("conv_vae, zoo defaults, float32", "conv_vae", ["train.precision=float32"]),
    "conv_vae_bf16": ("conv_vae, zoo defaults, mixed bfloat16", "conv_vae",
                      ["train.precision=mixed_bfloat16"]),
    "dense_vae": ("dense_vae, zoo defaults, float32", "dense_vae", ["train.precision=float32"]),
    "dense_vae_bf16": ("dense_vae, zoo defaults, mixed bfloat16", "dense_vae",
                       ["train.precision=mixed_bfloat16"]),
    "beta_vae": ("beta_vae, zoo defaults, float32", "beta_vae", ["train.precision=float32"]),
}


def load_images(dataset):
    import numpy as np

    from vae_zoo.config import DataConfig
    from vae_zoo.data import load_data

    data = load_data(DataConfig(dataset=dataset))
    return data.splits["train"].read_all()["x"], data.source


def build(name, dataset, images):
    """`(model, train_one_epoch)` for a candidate."""
    import numpy as np

    _, zoo_model, overrides = CANDIDATES[name]
    if zoo_model is None:
        from benchmarks.keras_io_vae import build_keras_io_vae

        x = images.astype(np.float32) / 255.0
        model = build_keras_io_vae()
        return model, lambda: model.fit(x, epochs=1, batch_size=BATCH_SIZE, verbose=0)

    import tensorflow as tf

    from vae_zoo.config import RunConfig
    from vae_zoo.config import apply_overrides
    from vae_zoo.config import load_zoo_config
    import numpy as np

    from vae_zoo.data import make_pipeline
    from vae_zoo.data.store import ArrayStore
    from vae_zoo.data.store import Split
    from vae_zoo.training import TrainingLoop
    from vae_zoo.training.strategy import resolve_jit_compile
    from vae_zoo.training.trainer import prepare

    raw = apply_overrides(load_zoo_config(zoo_model), [f"data.dataset={dataset}", *overrides])
    config = RunConfig.from_dict(raw)
    _, _, model, strategy = prepare(config)
    examples = Split(ArrayStore({"x": images}), np.arange(len(images)))
    steps = -(-len(images) // BATCH_SIZE)
    # The zoo's own training loop, as train.py runs it (a new epoch's order each call).
    loop = TrainingLoop(model, strategy, jit_compile=resolve_jit_compile(config.train.jit_compile))
    epochs = iter(range(10**9))

    def train_one_epoch():
        epoch = next(epochs)
        def train_batches(epoch, start_step=0, shard=None, epochs=1):
            return make_pipeline(examples, BATCH_SIZE, training=True, epoch=epoch,
                                 start_step=start_step, shard=shard, epochs=epochs)

        loop.fit(train_batches, epochs=epoch + 1, steps_per_epoch=steps, verbose=0,
                 initial_epoch=epoch)

    return model, train_one_epoch


def count_params(model):
    import numpy as np

    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def memory_worker(name, dataset):
    images, _ = load_images(dataset)
    model, train_epoch = build(name, dataset, images)
    train_epoch()
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_throughput(names, dataset, rounds):
    """Images/s and cores used (process CPU time / wall time) of every epoch after the warm-up."""
    images, source = load_images(dataset)
    candidates = {name: build(name, dataset, images) for name in names}
    epochs = {name: [] for name in names}
    for round_index in range(rounds + 1):
        for name, (_, train_epoch) in candidates.items():
            start, cpu_start = time.perf_counter(), cpu_seconds()
            train_epoch()
            wall = time.perf_counter() - start
            speed, cores = len(images) / wall, (cpu_seconds() - cpu_start) / wall
            if round_index:  # round 0 warms up
                epochs[name].append((speed, cores))
            print(f"[round {round_index}/{rounds}{' warm-up' if not round_index else ''}] "
                  f"{name}: {speed:.0f} images/s on {cores:.2f} cores", flush=True)
    params = {name: count_params(model) for name, (model, _) in candidates.items()}
    return epochs, params, len(images), source


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dataset", default="fashion_mnist",
                        help="fashion_mnist (Debian's dataset-fashion-mnist) or mnist_sample")
    parser.add_argument("--models", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(RESULTS), help="folder for the result tables")
    args = parser.parse_args()
    if args.memory_worker:
        return memory_worker(args.memory_worker, args.dataset)

    memory = {}
    for name in args.models:
        result = subprocess.run(
            [sys.executable, __file__, "--memory-worker", name, "--dataset", args.dataset],
            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if result.returncode != 0:
            sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
        memory[name] = json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"]
        print(f"peak RSS {name}: {memory[name]:.0f} MB", flush=True)
    epochs, params, num_images, source = measure_throughput(args.models, args.dataset, args.rounds)

    all_rounds = {name: statistics.median(s for s, _ in runs) for name, runs in epochs.items()}
    # Images per CPU-second does not move with how many cores the host gave the process.
    per_cpu = {name: statistics.median(s / c for s, c in runs) for name, runs in epochs.items()}
    full = {name: [s for s, cores in runs if cores >= FULL_MACHINE * os.cpu_count()]
            for name, runs in epochs.items()}
    full_machine = {name: statistics.median(speeds) for name, speeds in full.items() if speeds}
    rows = [{
        "name": name, "description": CANDIDATES[name][0], "params": params[name],
        "images_per_second": round(all_rounds[name], 1), "vs_keras_io": _ratio(all_rounds, name),
        "full_machine_images_per_second": round(full_machine[name], 1) if name in full_machine
        else None,
        "full_machine_epochs": len(full[name]), "full_machine_vs_keras_io": _ratio(full_machine, name),
        "images_per_cpu_second": round(per_cpu[name], 1),
        "epochs": [{"images_per_second": round(s, 1), "cores": round(c, 2)} for s, c in epochs[name]],
        "peak_rss_mb": round(memory[name]),
    } for name in args.models]
    header = (f"Training throughput on {num_images} images of {source}, batch {BATCH_SIZE}, "
              f"{args.rounds} interleaved epochs per model after a warm-up round; "
              f"{os.cpu_count()} CPU cores ({platform.machine()}), TensorFlow {_tf_version()}. "
              f"'Full machine' keeps the epochs in which the process used at least "
              f"{FULL_MACHINE:.0%} of the cores (CPU time / wall time); see benchmarks/README.md.")
    lines = [header, "", "| model | trainable params | images/s, median of all epochs | vs keras.io "
             "| images/s, median of full-machine epochs (n) | vs keras.io "
             "| images per CPU-second, median | peak RSS (MB) "
             "| each epoch: images/s (cores used) |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        full_cell = (f"{row['full_machine_images_per_second']:.0f} ({row['full_machine_epochs']})"
                     if row["full_machine_images_per_second"] else "none (0)")
        lines.append(f"| {row['name']}: {row['description']} | {row['params']:,} | "
                     f"{row['images_per_second']:.0f} | {_times(row['vs_keras_io'])} | "
                     f"{full_cell} | {_times(row['full_machine_vs_keras_io'])} | "
                     f"{row['images_per_cpu_second']:.0f} | {row['peak_rss_mb']} | "
                     + ", ".join(f"{e['images_per_second']:.0f} ({e['cores']:.1f})"
                                 for e in row["epochs"]) + " |")
    lines += ["", f"Command: `python benchmarks/throughput.py --rounds {args.rounds} "
              f"--dataset {args.dataset}`"]
    write_results(args.out, "throughput", "\n".join(lines), {"header": header, "rows": rows})


def _times(ratio):
    return "-" if ratio is None else f"{ratio}x"  # no ratio without the keras.io row


def _ratio(values, name):
    baseline = values.get("keras_io_recipe")
    return round(values[name] / baseline, 2) if baseline and name in values else None


def _tf_version():
    import importlib.metadata

    return importlib.metadata.version("tensorflow")


if __name__ == "__main__":
    main()
