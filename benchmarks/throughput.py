"""Training throughput (images/s) and peak memory of every zoo model beside the keras.io recipe.

    python benchmarks/throughput.py [--rounds 5] [--dataset fashion_mnist]

Throughput: all models live in one process and train one epoch each in turn (A B C ... A B C ...),
so that the noise of a shared machine hits every model alike; after one warm-up round (tracing,
XLA compilation, caches) the table gives the median over `--rounds`. Same images, batch size (128)
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

# name -> (what it is, zoo model or None for the baseline, config overrides)
CANDIDATES = {
    "keras_io_recipe": ("keras.io conv VAE, Keras defaults (XLA auto)", None, []),
    "conv_vae_keras_io_arch": (
        "conv_vae with the recipe's architecture (conv 32/64, dense 16, latent 2)", "conv_vae",
        ["model.hidden_units=[16]", "model.latent_dim=2"]),
    "conv_vae": ("conv_vae, zoo defaults", "conv_vae", []),
    "dense_vae": ("dense_vae, zoo defaults", "dense_vae", []),
    "beta_vae": ("beta_vae, zoo defaults", "beta_vae", []),
}


def load_images(dataset):
    import numpy as np

    from vae_zoo.config import DataConfig
    from vae_zoo.data import load_image_data

    data = load_image_data(DataConfig(dataset=dataset))
    return np.stack(list(data.train.as_numpy_iterator())), data.source


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
    from vae_zoo.data import make_pipeline
    from vae_zoo.training.trainer import prepare

    raw = apply_overrides(load_zoo_config(zoo_model), [f"data.dataset={dataset}", *overrides])
    _, model = prepare(RunConfig.from_dict(raw))
    batches = make_pipeline(tf.data.Dataset.from_tensor_slices(images), BATCH_SIZE, training=True)
    return model, lambda: model.fit(batches, epochs=1, verbose=0, shuffle=False)


def count_params(model):
    import numpy as np

    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def memory_worker(name, dataset):
    images, _ = load_images(dataset)
    model, train_epoch = build(name, dataset, images)
    train_epoch()
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure_throughput(names, dataset, rounds):
    images, source = load_images(dataset)
    candidates = {name: build(name, dataset, images) for name in names}
    speeds = {name: [] for name in names}
    for round_index in range(rounds + 1):
        for name, (_, train_epoch) in candidates.items():
            start = time.perf_counter()
            train_epoch()
            speed = len(images) / (time.perf_counter() - start)
            if round_index:  # round 0 warms up
                speeds[name].append(speed)
            print(f"[round {round_index}/{rounds}{' warm-up' if not round_index else ''}] "
                  f"{name}: {speed:.0f} images/s", flush=True)
    params = {name: count_params(model) for name, (model, _) in candidates.items()}
    return speeds, params, len(images), source


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
    speeds, params, num_images, source = measure_throughput(args.models, args.dataset, args.rounds)

    medians = {name: statistics.median(values) for name, values in speeds.items()}
    bests = {name: max(values) for name, values in speeds.items()}
    # What a whole run of these epochs sees: total images over total time (the harmonic mean).
    overall = {name: len(values) / sum(1 / v for v in values) for name, values in speeds.items()}
    rows = [{
        "name": name, "description": CANDIDATES[name][0], "params": params[name],
        "images_per_second": round(medians[name], 1),
        "best_images_per_second": round(bests[name], 1),
        "rounds": [round(v, 1) for v in speeds[name]],
        "overall_images_per_second": round(overall[name], 1),
        "vs_keras_io": _ratio(medians, name), "best_vs_keras_io": _ratio(bests, name),
        "overall_vs_keras_io": _ratio(overall, name),
        "peak_rss_mb": round(memory[name]),
    } for name in args.models]
    header = (f"Training throughput on {num_images} images of {source}, batch {BATCH_SIZE}: median "
              f"and best of {args.rounds} interleaved epochs after a warm-up round; "
              f"{os.cpu_count()} CPU cores ({platform.machine()}), TensorFlow {_tf_version()}")
    lines = [header, "", "| model | trainable params | images/s (median) | vs keras.io | "
             "images/s (best) | vs keras.io | images/s (all rounds) | vs keras.io | "
             "peak RSS (MB) | images/s per round |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['name']}: {row['description']} | {row['params']:,} | "
                     f"{row['images_per_second']:.0f} | {row['vs_keras_io']}x | "
                     f"{row['best_images_per_second']:.0f} | {row['best_vs_keras_io']}x | "
                     f"{row['overall_images_per_second']:.0f} | {row['overall_vs_keras_io']}x | "
                     f"{row['peak_rss_mb']} | {', '.join(f'{v:.0f}' for v in row['rounds'])} |")
    lines += ["", f"Command: `python benchmarks/throughput.py --rounds {args.rounds} "
              f"--dataset {args.dataset}`"]
    write_results(args.out, "throughput", "\n".join(lines), {"header": header, "rows": rows})


def _ratio(values, name):
    baseline = values.get("keras_io_recipe")
    return round(values[name] / baseline, 2) if baseline else None


def _tf_version():
    import importlib.metadata

    return importlib.metadata.version("tensorflow")


if __name__ == "__main__":
    main()
