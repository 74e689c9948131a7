"""Latency per `reconstruct` call at batch 1 and 64, and file size, for the SavedModel and every
TFLite quantisation mode of one exported model.

    python benchmarks/serving.py [--run-dir runs/conv_vae] [--calls 200]

Without --run-dir it trains conv_vae for 2 epochs on the embedded sample first (latency does not
depend on how well a model is trained). Each TFLite file runs on LiteRT's default single thread and
on all cores; the SavedModel uses TensorFlow's thread pools (all cores). Formats are timed in interleaved rounds, the median reported.
Writes benchmarks/results/serving.{md,json}.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks import plots  # noqa: E402
from benchmarks.common import write_results  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir")
    parser.add_argument("--calls", type=int, default=200, help="calls per format and batch size")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the result tables")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from vae_zoo.commands.export import export_run
    from vae_zoo.commands.export import folder_size

    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = workdir / "run"
        # Latency does not depend on the test metrics: a small evaluation is enough.
        subprocess.run([sys.executable, "train.py", "--model", "conv_vae", "--epochs", "2",
                        "--run-dir", str(run_dir), "--dataset", "mnist_sample",
                        "--set", "eval.pictures=false", "--set", "data.test_limit=256",
                        "--set", "eval.iw_samples=2", "--set", "eval.iw_examples=64"],
                       cwd=ROOT, check=True, capture_output=True)
    exported = export_run(run_dir, name="bench", base_path=workdir / "exports",
                          quantize=("none", "dynamic", "float16", "int8"), log=lambda *a: None)

    saved = tf.saved_model.load(exported["saved_model"]).signatures["reconstruct"]
    runners = {"SavedModel": lambda x: saved(x=tf.constant(x))}
    sizes = {"SavedModel": folder_size(exported["saved_model"])}
    threads = {"SavedModel": os.cpu_count()}
    for mode, info in exported["tflite"].items():
        # LiteRT's default is one thread; num_threads=cores is what a batch server would set.
        for num_threads in sorted({1, os.cpu_count()}):
            interpreter = Interpreter(model_path=info["path"], num_threads=num_threads)
            runner = interpreter.get_signature_runner("reconstruct")
            name = f"TFLite {mode}, {num_threads} thread{'s' if num_threads > 1 else ''}"
            runners[name] = lambda x, runner=runner: runner(x=x)
            sizes[name], threads[name] = info["bytes"], num_threads

    image_shape = saved.structured_input_signature[1]["x"].shape[1:]
    inputs = {b: np.random.default_rng(0).uniform(size=(b, *image_shape)).astype("float32")
              for b in (1, 64)}
    times = {(name, b): [] for name in runners for b in inputs}
    rounds = 10
    for round_index in range(rounds + 1):
        for name, run in runners.items():
            for batch, x in inputs.items():
                if round_index == 0:
                    run(x)  # warm-up: resize, allocate
                    continue
                for _ in range(max(1, args.calls // rounds)):
                    start = time.perf_counter()
                    run(x)
                    times[(name, batch)].append((time.perf_counter() - start) * 1e3)

    lines = [f"`reconstruct` latency per call (median over {args.calls} calls in {rounds} "
             f"interleaved rounds), {os.cpu_count()} CPU cores ({platform.machine()}), "
             f"model conv_vae ({tuple(image_shape)} inputs)", "",
             "| format | threads | size (MB) | batch 1 (ms) | batch 64 (ms) | batch 64 (images/s) |",
             "|---|---|---|---|---|---|"]
    rows = []
    for name in runners:
        b1, b64 = (statistics.median(times[(name, b)]) for b in (1, 64))
        rows.append({"format": name, "threads": threads[name], "bytes": sizes[name],
                     "batch1_ms": round(b1, 3), "batch64_ms": round(b64, 3)})
        lines.append(f"| {name} | {threads[name]} | {sizes[name] / 1e6:.2f} | {b1:.2f} | "
                     f"{b64:.2f} | {64e3 / b64:.0f} |")
    lines += ["", "Command: `python benchmarks/serving.py" +
              (f" --run-dir {args.run_dir}`" if args.run_dir else "`") + " (SavedModel size: the "
              "whole version folder)"]
    write_results(args.out, "serving", "\n".join(lines), rows)
    plots.serving(rows, args.out)


if __name__ == "__main__":
    main()
