"""Test ELBO and importance-weighted NLL of dense_vae, conv_vae and beta_vae after a fixed budget
of epochs, on full Fashion-MNIST and on the embedded MNIST sample.

    python benchmarks/quality.py [--k 5000] [--iw-examples 500] [--fashion-epochs 10] [--mnist-epochs 50]

conv_vae is trained a second time with `train.precision=mixed_bfloat16`, to show what the faster
precision costs in likelihood (`--bf16-models` to choose).

Every number comes from an ordinary `python train.py` run (printed, so each row can be rerun alone),
with dynamic binarisation so that the Bernoulli likelihood is a true likelihood of the data.
Writes benchmarks/results/quality.{md,json}; the runs go to benchmarks/runs/.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402
RUNS = ROOT / "benchmarks" / "runs"
MODELS = ("dense_vae", "conv_vae", "beta_vae")
# Burda et al. (2016), Table 1: 1-stochastic-layer VAE trained with k = 1 on all 60,000 dynamically
# binarised MNIST training digits, NLL estimated with k = 5000 on the 10,000 test digits.
IWAE_PAPER_VAE_NLL = 86.76


def run_name(dataset, model, precision):
    return f"{dataset}-{model}" + ("" if precision == "float32" else f"-{precision}")


def command(model, dataset, epochs, k, iw_examples, runs, precision="float32"):
    cmd = [sys.executable, "train.py", "--model", model, "--dataset", dataset, "--epochs",
           str(epochs), "--run-dir", str(runs / run_name(dataset, model, precision)), "--set",
           "data.binarize=true", "--set", f"eval.iw_samples={k}", "--set",
           f"eval.iw_examples={iw_examples}", "--set", "eval.pictures=false"]
    return cmd + (["--set", f"train.precision={precision}"] if precision != "float32" else [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    parser.add_argument("--iw-examples", type=int, default=500,
                        help="test images for the IW NLL (the ELBO uses all)")
    parser.add_argument("--fashion-epochs", type=int, default=10)
    parser.add_argument("--mnist-epochs", type=int, default=50)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--datasets", nargs="*", default=["fashion_mnist", "mnist_sample"])
    parser.add_argument("--bf16-models", nargs="*", default=["conv_vae"],
                        help="models trained a second time in mixed bfloat16, to compare quality")
    parser.add_argument("--runs", default=str(RUNS), help="folder for the training runs")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the result tables")
    args = parser.parse_args()

    rows = []
    runs = Path(args.runs)
    budgets = {"fashion_mnist": args.fashion_epochs, "mnist_sample": args.mnist_epochs}
    for dataset in args.datasets:
        epochs = budgets[dataset]
        variants = [(m, "float32") for m in args.models]
        variants += [(m, "mixed_bfloat16") for m in args.bf16_models]
        for model, precision in variants:
            run_dir = runs / run_name(dataset, model, precision)
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            cmd = command(model, dataset, epochs, args.k, args.iw_examples, runs, precision)
            shown = " ".join(["python", *cmd[1:]]).replace(str(ROOT) + "/", "")
            print(f"$ {shown}", flush=True)
            start = time.perf_counter()
            result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if result.returncode != 0:
                sys.exit(f"failed:\n{result.stderr[-3000:]}")
            metrics = json.loads((run_dir / "metrics.json").read_text())
            test = metrics["test"]
            rows.append({
                "dataset": dataset, "model": model, "precision": precision, "epochs": epochs,
                "train_images": metrics["sizes"]["train"], "test_images": metrics["sizes"]["test"],
                "elbo": round(test["elbo"], 2), "iw_nll": round(test["iw_nll"], 2),
                "iw_samples": test["iw_samples"], "iw_examples": test["iw_examples"],
                "iw_bits_per_dim": round(test["iw_bits_per_dim"], 4),
                "active_units": f"{test['active_units']}/{test['latent_dim']}",
                "minutes": round((time.perf_counter() - start) / 60, 1), "command": shown,
            })
            print(f"  test ELBO {test['elbo']:.2f}, IW NLL {test['iw_nll']:.2f} nats", flush=True)

    lines = [
        f"Quality after a fixed budget, dynamically binarised images, Bernoulli p(x|z). ELBO on the "
        f"whole test split; IW NLL with k = {args.k} importance samples on its first "
        f"{args.iw_examples} images (nats per image, lower is better).", "",
        "| dataset | model | precision | epochs | train images | test ELBO | IW NLL | bits/dim "
        "| active units | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['dataset']} | {row['model']} | {row['precision']} | {row['epochs']} | "
                     f"{row['train_images']:,} | "
                     f"{row['elbo']} | {row['iw_nll']} | {row['iw_bits_per_dim']} | "
                     f"{row['active_units']} | {row['minutes']} |")
    lines += ["", f"For reference, the IWAE paper's 1-layer VAE (Burda et al. 2016, Table 1): "
              f"{IWAE_PAPER_VAE_NLL} nats on the full dynamically binarised MNIST test set with "
              "k = 5000, after training on all 60,000 training digits for 3,280 passes; the "
              "mnist_sample rows train on 4,750 digits for far fewer epochs.", "", "Commands:", ""]
    lines += [f"    {row['command']}" for row in rows]
    write_results(args.out, "quality", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
