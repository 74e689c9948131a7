"""Time to result: whole `python train.py` runs of every zoo model, where their seconds go, and
the importance-weighted NLL's speed against the machine's float32 matrix peak.

    python benchmarks/time_to_result.py [--epochs 30] [--models ...] [--pythae /work/venvs/pythae/bin/python]

1. Every zoo model (every `zoo_configs/*.yaml`, so new models are included) trains its default
   run on the embedded MNIST sample in a subprocess. From the run's `metrics.json` `timing` (the
   loop's own clock, same run): the seconds inside training and validation steps (the bare
   steps, their first calls, which trace, included), waiting for data, in each callback; the
   overhead is the training wall time over the bare steps. The process's wall and CPU seconds
   are measured around it.
1b. The breakdown by difference: one model's run with each part switched off in turn (image
   summaries, step checkpoints, TensorBoard, validation, all four;
   `benchmarks/train_without.py`), interleaved for `--rounds` rounds; and, with `--base
   CHECKOUT`, the same full run from another checkout of vae_zoo (e.g. the commit before a
   change), interleaved with this one.
2. dense_vae for 50 epochs on a statically binarised MNIST sample (4,750 training images),
   interleaved with pythae's default VAE (PyTorch, `benchmarks/pythae_vae.py`, from its own venv)
   on the same binary images, `--rounds` times each.
3. The IW NLL of the trained conv_vae at k = 5000: images/s and the projected time for the 10,000
   MNIST test images, beside the estimator it replaced (one host call per chunk of 16 images) and
   bfloat16 hidden layers, interleaved; the fraction of the float32 peak (a 2048^3 `tf.matmul`,
   timed in the same process); and how far apart the estimates are, in standard errors.

Writes benchmarks/results/time_to_result.{md,json}; the runs go to benchmarks/runs/time_to_result/.
"""

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

RUNS = ROOT / "benchmarks" / "runs" / "time_to_result"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
MNIST_TEST_IMAGES = 10_000


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def shown(cmd):
    return " ".join(["python", *cmd[1:]]).replace(str(ROOT) + "/", "")


def run_command(cmd, root=ROOT):
    """Runs `cmd` from `root`; returns (wall seconds, CPU seconds, stdout)."""
    print(f"$ {shown(cmd)}" + (f"   (in {root})" if root != ROOT else ""), flush=True)
    wall, cpu = time.perf_counter(), children_cpu()
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=ENV)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if result.returncode != 0:
        sys.exit(f"failed:\n{result.stderr[-3000:]}")
    return wall, cpu, result.stdout


STEP_PARTS = ("train_steps", "validation_steps", "first_train_step", "first_test_step")


def train_run(model, run_dir, *extra, root=ROOT, script=("train.py",)):
    """One `train.py` run (from the checkout `root`); returns its row: process wall/CPU and the
    loop's own timing."""
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, *script, "--model", model, "--run-dir", str(run_dir), "--set",
           "eval.iw_examples=64", "--set", "eval.pictures=false", *extra]
    wall, cpu, _ = run_command(cmd, root)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    timing = metrics["timing"]
    # The first call of each step function traces it; older checkouts count it in the steps.
    steps = sum(timing.get(part, 0.0) for part in STEP_PARTS)
    train = metrics["train_seconds"]
    return {
        "model": model, "epochs": metrics["epochs"], "process_wall": round(wall, 2),
        "process_cpu": round(cpu, 2), "train_wall": train, "bare_steps": round(steps, 2),
        "first_calls": round(timing["first_train_step"] + timing.get("first_test_step", 0.0), 2)
        if "first_train_step" in timing else None,  # None: counted in the steps (older code)
        "overhead": round(train / steps - 1, 3), "timing": timing,
        "test_elbo": round(metrics["test"].get("elbo", float("nan")), 2), "command": shown(cmd),
    }


def part_costs(timing):
    """The largest non-step parts of a run's training seconds, as text."""
    parts = {k.replace("callback/", ""): v for k, v in timing.items()
             if k not in (*STEP_PARTS, "traces")}
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in top)


# --- The breakdown by difference, and before/after ---------------------------------------------

WITHOUT = {  # variant: (its name in the table, the parts switched off)
    "full": ("full run", ()),
    "images": ("no image summaries", ("images",)),
    "checkpoints": ("no step checkpoints", ("checkpoints",)),
    "tensorboard": ("no TensorBoard", ("tensorboard",)),
    "validation": ("no validation", ("validation",)),
    "all": ("none of the four", ("images", "checkpoints", "tensorboard", "validation")),
}


def breakdown(model, runs, rounds, extra, base=None, variants=tuple(WITHOUT)):
    """Interleaved rounds of `model`'s run with each part switched off in turn (and the full
    run from the checkout `base`, when given); returns every run's row."""
    rows = []
    for r in range(rounds):
        if base:
            row = train_run(model, runs / "breakdown" / "base", *extra, root=Path(base))
            rows.append({"round": r, "variant": f"before: {base}", **row})
        for name, parts in (WITHOUT[v] for v in variants):
            script = ("train.py",) if not parts else (
                "benchmarks/train_without.py", *parts, "--")
            row = train_run(model, runs / "breakdown" / (parts and "-".join(parts) or "full"),
                            *extra, script=script)
            rows.append({"round": r, "variant": name, **row})
    return rows


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def static_binary_mnist(path, seed=0):
    """The embedded sample, each pixel drawn once as Bernoulli(p): vae_zoo's npz and pythae's."""
    import numpy as np

    sample = np.load(ROOT / "vae_zoo" / "data" / "mnist_sample.npz")
    rng = np.random.default_rng(seed)

    def binary(x):
        return ((rng.random(x.shape) < x / 255.0) * 255).astype(np.uint8)

    x_train, x_test = binary(sample["x_train"]), binary(sample["x_test"])
    np.savez(path / "zoo.npz", x_train=x_train, y_train=sample["y_train"], x_test=x_test,
             y_test=sample["y_test"])
    # pythae trains on the images vae_zoo trains on: the loader's 5% validation split, same seed.
    from vae_zoo.config import DataConfig
    from vae_zoo.data import load_data

    data = load_data(DataConfig(dataset=str(path / "zoo.npz")), seed=0)
    splits = {s: np.stack([e["x"] for e in data.splits[s].as_numpy_iterator()])
              for s in ("train", "validation")}
    np.savez(path / "pythae.npz", x_train=splits["train"], x_validation=splits["validation"])
    return path / "zoo.npz", path / "pythae.npz"


def versus_pythae(runs, pythae_python, rounds, epochs):
    folder = runs / "binary"
    folder.mkdir(parents=True, exist_ok=True)
    zoo_npz, pythae_npz = static_binary_mnist(folder)
    rows = []
    for r in range(rounds):
        row = train_run("dense_vae", folder / "dense_vae", "--dataset", str(zoo_npz),
                        "--epochs", str(epochs))
        rows.append({"round": r, "who": "vae_zoo dense_vae", **row})
        if pythae_python:
            cmd = [pythae_python, str(ROOT / "benchmarks" / "pythae_vae.py"), str(pythae_npz),
                   "--epochs", str(epochs)]
            wall, cpu, out = run_command(cmd)
            result = json.loads(out.strip().splitlines()[-1])
            rows.append({"round": r, "who": result["framework"], "process_wall": round(wall, 2),
                         "process_cpu": round(cpu, 2), "train_wall": result["wall_seconds"],
                         "train_cpu": result["cpu_seconds"], "params": result["params"],
                         "command": f"{pythae_python} benchmarks/pythae_vae.py DATA.npz "
                                    f"--epochs {epochs}"})
    return rows


# --- Evaluation -------------------------------------------------------------------------------


def matmul_peak(size=2048, repeats=10):
    """float32 GFLOP/s of a size^3 tf.matmul: the best of `repeats`, and their median."""
    import numpy as np
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    tf.matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    flop = 2 * size**3
    return flop / min(times) / 1e9, flop / float(np.median(times)) / 1e9


def decoder_flop(model):
    """Multiply-adds x 2 of one decoder pass on one z (Dense, Conv2D, Conv2DTranspose layers)."""
    import keras

    total = 0
    for layer in model.decoder._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Dense):
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, out_c, in_c = layer.kernel.shape
            _, h, w, _ = layer.input.shape
            total += 2 * h * w * in_c * kh * kw * out_c
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, in_c, out_c = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2 * h * w * out_c * kh * kw * in_c
    return int(total)


def previous_estimator(model, k):
    """The estimator this benchmark compares with (vae_zoo before issue #13): 16 images at a
    time, one host call per chunk of about 4096 decoded images, logsumexp folded on the host."""
    import numpy as np
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def chunk_sum(x, size):
        return tf.reduce_logsumexp(model.log_importance_weights(x, size), axis=0)

    def estimate(x):
        out = []
        for start in range(0, len(x), 16):
            part = tf.convert_to_tensor(x[start:start + 16])
            chunk = max(1, min(k, 4096 // len(part)))
            log_sum, done = tf.fill([len(part)], -math.inf), 0
            while done < k:
                size = min(chunk, k - done)
                log_sum = tf.reduce_logsumexp(tf.stack([log_sum, chunk_sum(part, size)]), axis=0)
                done += size
            out.append((log_sum - math.log(k)).numpy())
        return np.concatenate(out)

    return estimate


def evaluation(run_dir, k, images, rounds):
    import keras
    import numpy as np
    import tensorflow as tf

    import vae_zoo  # noqa: F401  (registers the models with Keras)
    from vae_zoo.config import RunConfig
    from vae_zoo.data import images_of
    from vae_zoo.data import load_data
    from vae_zoo.data import make_batches
    from vae_zoo.evaluation.iw_nll import importance_weighted_log_likelihood

    model = keras.models.load_model(run_dir / "model.keras")
    config = RunConfig.from_dict(__import__("yaml").safe_load((run_dir / "config.yaml").read_text()))
    data = load_data(config.data, seed=config.train.seed)
    x = images_of(make_batches(data, "test", config.data, seed=config.train.seed), images)
    bf16 = config.model.build(data.spec, precision="mixed_bfloat16")
    bf16(x[:2])
    bf16.set_weights(model.get_weights())

    def new(m):
        def estimate(x):
            return np.concatenate([importance_weighted_log_likelihood(m, x[i:i + 64], k).numpy()
                                   for i in range(0, len(x), 64)])
        return estimate

    candidates = {"previous (host loop per chunk)": previous_estimator(model, k),
                  "new, float32": new(model), "new, bfloat16 hidden layers": new(bf16)}
    for fn in candidates.values():  # warm-up: traces
        fn(x[:2])
    peaks, timings, estimates = [], {n: [] for n in candidates}, {n: [] for n in candidates}
    for _ in range(rounds):
        peaks.append(matmul_peak())
        for name, fn in candidates.items():
            wall, cpu = time.perf_counter(), time.process_time()
            estimates[name].append(fn(x))
            timings[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    peak = max(p[0] for p in peaks)
    flop_per_image = decoder_flop(model) * k
    reference = np.concatenate(estimates["new, float32"])
    rows = []
    for name in candidates:
        walls = sorted(t[0] for t in timings[name])
        best = walls[0]
        ips = images / best
        values = np.concatenate(estimates[name])
        diff = values - reference
        rows.append({
            "estimator": name, "images": images, "k": k,
            "images_per_second": round(ips, 3),
            "walls": [round(t[0], 2) for t in timings[name]],
            "cpus": [round(t[1], 2) for t in timings[name]],
            "projected_minutes_10k": round(MNIST_TEST_IMAGES / ips / 60, 1),
            "gflops": round(flop_per_image * ips / 1e9, 1),
            "fraction_of_peak": round(flop_per_image * ips / 1e9 / peak, 3),
            "mean_nll": round(float(-values.mean()), 3),
            "shift_vs_new_float32": round(float(-diff.mean()), 4),
            "shift_standard_error": round(float(diff.std(ddof=1) / math.sqrt(len(diff))), 4)
            if name != "new, float32" else 0.0,
        })
    return {"model": model.name, "peak_gflops": round(peak, 1), "peaks": [[round(a, 1), round(b, 1)] for a, b in peaks],
            "decoder_mflop_per_pass": round(decoder_flop(model) / 1e6, 2), "rows": rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="zoo models (default: every zoo config)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: each zoo default)")
    parser.add_argument("--pythae", help="python of a venv with pythae (none: skip its runs)")
    parser.add_argument("--pythae-epochs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of 2. and 3.")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--eval-model", default="conv_vae",
                        help="the model whose IW NLL is timed (its run of step 1, else trained)")
    parser.add_argument("--runs", default=str(RUNS), help="folder for the training runs")
    parser.add_argument("--eval-images", type=int, default=32)
    parser.add_argument("--breakdown-model", default="dense_vae",
                        help="the model whose run is repeated without each part")
    parser.add_argument("--base", help="another checkout of vae_zoo whose full run joins the "
                        "breakdown's rounds (before/after)")
    parser.add_argument("--breakdown-variants", nargs="*", default=list(WITHOUT),
                        choices=list(WITHOUT), help="the breakdown's runs (default: all)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["train", "breakdown", "pythae", "eval"])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    from vae_zoo.config import available_models

    load = os.getloadavg()
    results = {"load_average_at_start": [round(v, 2) for v in load], "train": [],
               "breakdown": [], "pythae": [], "evaluation": None}
    models = args.models or available_models()
    runs = Path(args.runs)
    sample = ["--dataset", "mnist_sample"] + (["--epochs", str(args.epochs)] if args.epochs else [])
    if "train" not in args.skip:
        for model in models:
            results["train"].append(train_run(model, runs / model, *sample))
    if "breakdown" not in args.skip:
        results["breakdown"] = breakdown(args.breakdown_model, runs, args.rounds, sample,
                                         base=args.base, variants=args.breakdown_variants)
        results["load_average_after_breakdown"] = [round(v, 2) for v in os.getloadavg()]
    if "pythae" not in args.skip:
        results["pythae"] = versus_pythae(runs, args.pythae, args.rounds, args.pythae_epochs)
    if "eval" not in args.skip:
        run = runs / args.eval_model
        if not (run / "model.keras").exists():
            train_run(args.eval_model, run, *sample)
        results["evaluation"] = evaluation(run, args.k, args.eval_images, args.rounds)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_results(args.out, "time_to_result", table(results), results)


def table(results):
    lines = [f"Load average (1, 5, 15 min) at start {results['load_average_at_start']}, at end "
             f"{results['load_average_at_end']} (2 cores, shared).", ""]
    if results["train"]:
        lines += ["### Training runs (embedded MNIST sample)", "",
                  "| model | epochs | process wall s | process CPU s | training wall s | bare steps s "
                  "| of which first calls s | overhead | traces | largest other parts (s) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["train"]:
            lines.append(f"| {r['model']} | {r['epochs']} | {r['process_wall']} | {r['process_cpu']} "
                         f"| {r['train_wall']} | {r['bare_steps']} | {r['first_calls'] or '-'} | "
                         f"{r['overhead']:.1%} | {r['timing']['traces']} | "
                         f"{part_costs(r['timing'])} |")
        lines += ["", "Bare steps: seconds inside the training and validation step calls (the "
                  "loop's clock, same run), the first call of each (tracing and one step) "
                  "included; overhead: training wall / bare steps - 1.", ""]
    if results["breakdown"]:
        lines += breakdown_table(results["breakdown"])
    if results["pythae"]:
        lines += ["### dense_vae against pythae's VAE, statically binarised sample", "",
                  "| round | who | process wall s | process CPU s | training wall s |",
                  "|---|---|---|---|---|"]
        for r in results["pythae"]:
            lines.append(f"| {r['round']} | {r['who']} | {r['process_wall']} | {r['process_cpu']} "
                         f"| {r['train_wall']} |")
        lines.append("")
    ev = results["evaluation"]
    if ev:
        lines += [f"### IW NLL, {ev['model']}, k = {ev['rows'][0]['k']}", "",
                  f"float32 peak (2048^3 tf.matmul, best of each round): {ev['peak_gflops']} GFLOP/s; "
                  f"decoder {ev['decoder_mflop_per_pass']} MFLOP per pass.", "",
                  "| estimator | images | images/s | walls s | CPU s | 10,000 images (min) | GFLOP/s "
                  "| of peak | mean NLL | shift vs new float32 (SE) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in ev["rows"]:
            lines.append(f"| {r['estimator']} | {r['images']} | {r['images_per_second']} | {r['walls']} "
                         f"| {r['cpus']} | {r['projected_minutes_10k']} | {r['gflops']} | "
                         f"{r['fraction_of_peak']:.0%} | {r['mean_nll']} | {r['shift_vs_new_float32']} "
                         f"({r['shift_standard_error']}) |")
    return "\n".join(lines)


def breakdown_table(rows):
    model, epochs = rows[0]["model"], rows[0]["epochs"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    rounds = len({r["round"] for r in rows})
    lines = [f"### Where {model}'s training seconds go: parts switched off ({epochs} epochs, "
             f"{rounds} interleaved rounds, medians)", "",
             "| run | process wall s | process CPU s | training wall s | bare steps s | of which "
             "first calls s | overhead | training wall saved s | process CPU saved s | each "
             "round's training wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    fulls = [r for r in rows if r["variant"] == "full run"] or rows
    full = {key: median([r[key] for r in fulls]) for key in ("train_wall", "process_cpu")}
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        m = {key: median([r[key] for r in mine])
             for key in ("process_wall", "process_cpu", "train_wall", "bare_steps")}
        firsts = [r["first_calls"] for r in mine if r["first_calls"] is not None]
        first = f"{median(firsts):.2f}" if firsts else "(in the steps)"
        sign = -1 if variant.startswith("before") else 1  # what the change saves
        saved = (f"{sign * (full['train_wall'] - m['train_wall']):.2f} | "
                 f"{sign * (full['process_cpu'] - m['process_cpu']):.2f}"
                 if variant != "full run" else " | ")
        lines.append(f"| {variant} | {m['process_wall']:.2f} | {m['process_cpu']:.2f} | "
                     f"{m['train_wall']:.2f} | {m['bare_steps']:.2f} | {first} | "
                     f"{m['train_wall'] / m['bare_steps'] - 1:.1%} | {saved} | "
                     f"{[r['train_wall'] for r in mine]} |")
    lines += ["", "Saved: the full run's median minus this run's (a part's cost by difference; "
              "noise of a loaded machine can make it negative). `before`: the full run from the "
              "other checkout; its saved columns are its median minus the full run's, what the "
              "change saves.", ""]
    return lines


if __name__ == "__main__":
    main()
