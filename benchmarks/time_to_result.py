"""Time to result: whole `python train.py` runs of every zoo model, where their seconds go, and
the importance-weighted NLL's speed against the machine's float32 matrix peak.

    python benchmarks/time_to_result.py [--epochs 30] [--models ...] [--pythae $PYTHAE_PYTHON]

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
from benchmarks.common import shown as shown_from  # noqa: E402
from benchmarks import plots  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

RUNS = ROOT / "benchmarks" / "runs" / "time_to_result"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
MNIST_TEST_IMAGES = 10_000
PARTS = {"train": "train", "breakdown": "breakdown", "pythae": "pythae",
         "eval": "evaluation"}  # --skip name: results key


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def shown(cmd):
    """`cmd` (run by this interpreter) as a user types it from the repository's root."""
    return shown_from(["python", *cmd[1:]], ROOT)


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
    splits = {s: data.splits[s].read_all()["x"]
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
                         "command": "$PYTHAE_PYTHON benchmarks/pythae_vae.py DATA.npz "
                                    f"--epochs {epochs}"})
    return rows


# --- Evaluation -------------------------------------------------------------------------------


def matmul_peak(size=2048, repeats=10):
    """float32 GFLOP/s of a size^3 tf.matmul: the best of `repeats` by wall time, and per
    CPU-second over all of them (what the cores reach while they run, whatever the load)."""
    import tensorflow as tf

    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    tf.matmul(a, b).numpy()
    times, cpu = [], time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    flop = 2 * size**3
    return flop / min(times) / 1e9, flop * repeats / (time.process_time() - cpu) / 1e9


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


def stock_output_twin(model):
    """`model` with the stock `Conv2DTranspose` as its decoder's output layer, same weights: the
    decoder before issue #13 (`vae_zoo.layers.Conv2DTranspose` runs the same map faster outside
    training)."""
    import keras

    from vae_zoo import layers

    def stock(layer):
        kind = keras.layers.Conv2DTranspose if type(layer) is layers.Conv2DTranspose else type(layer)
        return kind.from_config(layer.get_config())

    twin = type(model).from_config(model.get_config())  # built by its constructor, as in_precision
    twin.set_weights(model.get_weights())
    twin.decoder = keras.models.clone_model(model.decoder, clone_function=stock)
    twin.decoder.set_weights(model.decoder.get_weights())
    return twin


def timed(fn, *args):
    """(result, wall seconds, CPU seconds) of `fn(*args)`."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def decoder_sweep(decoders, latent_dim, flop, rows_list, rounds):
    """GFLOP/s of the decoder alone by rows per call (wall and per CPU-second), interleaved."""
    import numpy as np
    import tensorflow as tf

    calls = {}
    for name, decoder in decoders.items():
        for jit in (False, True):
            fn = tf.function(lambda z, d=decoder: tf.reduce_sum(d(z, training=False)),
                             jit_compile=jit)
            for rows in rows_list:
                z = tf.random.normal([rows, latent_dim])
                fn(z).numpy()  # traces (and compiles)
                calls[(name, "XLA" if jit else "graph", rows)] = (fn, z)
    times = {key: [] for key in calls}
    for _ in range(rounds):
        for key, (fn, z) in calls.items():
            repeats = max(1, 8192 // key[2])
            _, wall, cpu = timed(lambda: [fn(z) for _ in range(repeats)][-1].numpy())
            times[key].append((wall, cpu, repeats * key[2]))
    rows = []
    for (name, compiler, n), runs in times.items():
        wall = min(w / r for w, _, r in runs)
        cpu = float(np.median([c / r for _, c, r in runs]))
        rows.append({"decoder": name, "compiler": compiler, "rows_per_call": n,
                     "gflops_wall": round(flop / wall / 1e9, 1),
                     "gflops_per_cpu_second": round(flop / cpu / 1e9, 1)})
    return rows


def evaluation(preset, k, images, rounds, sweep_rows):
    import numpy as np

    from vae_zoo.evaluation.iw_nll import importance_weighted_log_likelihood
    from vae_zoo.networks.precision import in_precision
    from vae_zoo.presets.sources import resolve_preset

    folder = resolve_preset(preset)
    model = folder.load_model()
    x = folder.read_check()["x"][:images]
    before = stock_output_twin(model)
    flop = decoder_flop(model)
    sweep = decoder_sweep({"stock output layer": before.decoder, "tap output layer": model.decoder},
                          model.latent_dim, flop, sweep_rows, rounds)

    def estimator(m):
        def estimate(x):
            return np.concatenate([importance_weighted_log_likelihood(m, x[i:i + 64], k).numpy()
                                   for i in range(0, len(x), 64)])
        return estimate

    candidates = {"before (stock Conv2DTranspose output layer)": estimator(before),
                  "after, float32": estimator(model),
                  "after, bfloat16 hidden layers": estimator(in_precision(model, "mixed_bfloat16"))}
    for fn in candidates.values():  # warm-up: traces
        fn(x[:2])
    peaks, timings, estimates = [], {n: [] for n in candidates}, {n: [] for n in candidates}
    for _ in range(rounds):
        peaks.append(matmul_peak())
        for name, fn in candidates.items():
            values, wall, cpu = timed(fn, x)
            estimates[name].append(values)
            timings[name].append((wall, cpu))
    peak = max(p[0] for p in peaks)
    peak_cpu = float(np.median([p[1] for p in peaks]))
    flop_per_image = flop * k
    reference = np.concatenate(estimates["after, float32"])
    rows = []
    for name in candidates:
        ips = images / min(t[0] for t in timings[name])
        cpu_per_image = float(np.median([t[1] for t in timings[name]])) / images
        values = np.concatenate(estimates[name])
        diff = values - reference
        rows.append({
            "estimator": name, "images": images, "k": k,
            "images_per_second": round(ips, 3),
            "walls": [round(t[0], 2) for t in timings[name]],
            "cpus": [round(t[1], 2) for t in timings[name]],
            "projected_minutes_10k": round(MNIST_TEST_IMAGES / ips / 60, 1),
            # Both cores busy with this alone, at the rate each reached per CPU-second:
            "projected_minutes_10k_two_cores": round(MNIST_TEST_IMAGES * cpu_per_image / 2 / 60, 1),
            "gflops": round(flop_per_image * ips / 1e9, 1),
            "fraction_of_peak": round(flop_per_image * ips / 1e9 / peak, 3),
            "gflops_per_cpu_second": round(flop_per_image / cpu_per_image / 1e9, 1),
            "fraction_of_peak_per_cpu_second": round(flop_per_image / cpu_per_image / 1e9 / peak_cpu, 3),
            "mean_nll": round(float(-values.mean()), 3),
            "shift_vs_after_float32": round(float(-diff.mean()), 4),
            "shift_standard_error": round(float(diff.std(ddof=1) / math.sqrt(len(diff))), 4)
            if name != "after, float32" else 0.0,
        })
    return {"model": f"{model.name} (preset {preset})", "peak_gflops": round(peak, 1),
            "peak_gflops_per_cpu_second": round(peak_cpu, 1),
            "peaks": [[round(a, 1), round(b, 1)] for a, b in peaks],
            "decoder_mflop_per_pass": round(flop / 1e6, 2), "rows": rows, "decoder_sweep": sweep}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="zoo models (default: every zoo config)")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: each zoo default)")
    parser.add_argument("--pythae", default=os.environ.get("PYTHAE_PYTHON"),
                        help="python of a venv with pythae (default: $PYTHAE_PYTHON; none: skip "
                             "its runs)")
    parser.add_argument("--pythae-epochs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of 2. and 3.")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--eval-preset", default="conv_vae_mnist",
                        help="the preset whose IW NLL is timed, on its check images (test split)")
    parser.add_argument("--runs", default=str(RUNS), help="folder for the training runs")
    parser.add_argument("--eval-images", type=int, default=32)
    parser.add_argument("--sweep-rows", nargs="*", type=int, default=[256, 1024, 4096, 16384],
                        help="z's per decoder call in the decoder sweep (its 16,384-row calls of "
                             "conv_vae's decoder took the process to 9.8 GB)")
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
    results = {"train": [], "breakdown": [], "pythae": [], "evaluation": None}
    previous = Path(args.out) / "time_to_result.json"
    if args.skip and previous.is_file():  # the skipped parts keep their last results
        last = json.loads(previous.read_text())
        parts = [PARTS[part] for part in args.skip if last.get(PARTS[part])]
        results.update({part: last[part] for part in parts})
        # Each kept part keeps the load averages of the run that measured it.
        results["kept"] = {part: last.get("kept", {}).get(part) or {key: last.get(key) for key in (
            "load_average_at_start", "load_average_at_end")} for part in parts}
    results["load_average_at_start"] = [round(v, 2) for v in load]
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
        results["evaluation"] = evaluation(args.eval_preset, args.k, args.eval_images, args.rounds,
                                            args.sweep_rows)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_results(args.out, "time_to_result", table(results), results)
    plots.time_to_result(results, args.out)


def table(results):
    lines = [f"Load average (1, 5, 15 min) at start {results['load_average_at_start']}, at end "
             f"{results['load_average_at_end']} (2 cores, shared).", ""]
    for part, load in (results.get("kept") or {}).items():
        lines += [f"`{part}` is kept from an earlier run of the script (skipped this time), load "
                  f"average at start {load['load_average_at_start']}, at end "
                  f"{load['load_average_at_end']}.", ""]
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
    if ev and "decoder_sweep" in ev:
        lines += evaluation_table(ev)
    elif ev:
        lines += ["### IW NLL (an earlier run of the script: see the json)", ""]
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


def evaluation_table(ev):
    k = ev["rows"][0]["k"]
    lines = [f"### IW NLL, {ev['model']}, k = {k}", "",
             f"float32 peak (2048^3 tf.matmul, same process): {ev['peak_gflops']} GFLOP/s wall (best "
             f"of each round), {ev['peak_gflops_per_cpu_second']} GFLOP per CPU-second (median); "
             f"decoder {ev['decoder_mflop_per_pass']} MFLOP per pass, "
             f"{ev['decoder_mflop_per_pass'] * k / 1000:.1f} GFLOP per image.", "",
             "| estimator | images | images/s | walls s | CPU s | 10,000 images (min) at this wall "
             "| 10,000 images (min) on 2 free cores | GFLOP/s | of peak | GFLOP per CPU-s | of peak "
             "per CPU-s | mean NLL | shift vs after, float32 (SE) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ev["rows"]:
        lines.append(f"| {r['estimator']} | {r['images']} | {r['images_per_second']} | {r['walls']} "
                     f"| {r['cpus']} | {r['projected_minutes_10k']} | "
                     f"{r['projected_minutes_10k_two_cores']} | {r['gflops']} | "
                     f"{r['fraction_of_peak']:.0%} | {r['gflops_per_cpu_second']} | "
                     f"{r['fraction_of_peak_per_cpu_second']:.0%} | {r['mean_nll']} | "
                     f"{r['shift_vs_after_float32']} ({r['shift_standard_error']}) |")
    lines += ["", "On 2 free cores: 10,000 x the CPU-seconds per image / 2, i.e. both cores at the "
              "rate this estimator reached per CPU-second (the wall column is what the shared "
              "machine gave it).", "", "The decoder alone, GFLOP/s by rows (z's) per call, "
              "interleaved (wall: best round; per CPU-second: median):", "",
              "| output layer | compiler | rows per call | GFLOP/s wall | GFLOP per CPU-s |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['decoder']} | {r['compiler']} | {r['rows_per_call']} | {r['gflops_wall']} "
              f"| {r['gflops_per_cpu_second']} |" for r in ev["decoder_sweep"]]
    return lines + [""]


if __name__ == "__main__":
    main()
