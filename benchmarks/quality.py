"""The quality table: every zoo model's test ELBO and importance-weighted NLL after equal budgets,
over several seeds (mean +- sd), beside the number its paper reports.

    python benchmarks/quality.py                                  # every row, 3 seeds, k = 5000
    python benchmarks/quality.py --rows conv_vae conv_vae/bf16 --datasets mnist_sample
    python benchmarks/quality.py --table-only                     # the table from finished runs

Every number comes from an ordinary `python train.py` run (its command is printed and written to
the table, so each run can be repeated alone), with dynamic binarisation so that the Bernoulli
likelihood is a true likelihood of the data. Runs go to `benchmarks/runs/quality/<dataset>/<row>/
seed-<n>`; a finished run whose command is unchanged is reused, so the table grows over several
sittings (`--fresh` trains again); rows not asked for keep their stored results. Writes
benchmarks/results/quality.{md,json}.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import add_seed_run_arguments  # noqa: E402
from benchmarks.common import mean_sd  # noqa: E402
from benchmarks.common import ordering_verdict  # noqa: E402
from benchmarks.common import seed_run  # noqa: E402
from benchmarks.common import shown  # noqa: E402
from benchmarks import plots  # noqa: E402
from benchmarks.common import with_stored_rows  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

RUNS = ROOT / "benchmarks" / "runs" / "quality"
# About the same number of training images on both: 50 x 4,750 = 237,500 and 5 x 57,000 = 285,000.
EPOCHS = {"mnist_sample": 50, "fashion_mnist": 5}
BURDA = "Burda et al. 2016, Table 1: 60,000 MNIST digits, 3,280 passes"

# name -> (zoo model, extra `--set` overrides, (paper NLL on dynamically binarised MNIST, source))
ROWS = {
    "dense_vae": ("dense_vae", [], (86.76, f"VAE, 1 stochastic layer; {BURDA}")),
    "conv_vae": ("conv_vae", [], None),
    "conv_vae/bf16": ("conv_vae", ["train.precision=mixed_bfloat16"], None),
    "beta_vae": ("beta_vae", [], None),
    "iwae/k5": ("iwae", ["model.k=5"], (85.54, f"IWAE k = 5; {BURDA}")),
    "iwae/k50": ("iwae", ["model.k=50"], (84.78, f"IWAE k = 50; {BURDA}")),
    "vamp_vae": ("vamp_vae", [], (85.57, "VampPrior K = 500, 1 layer; Tomczak & Welling 2018, "
                                         "Table 2: 50,000 digits, up to 2,000 epochs")),
    "hvae": ("hvae", [], (85.33, f"VAE, 2 stochastic layers; {BURDA}")),
    "cvae": ("cvae", [], None),
    "vae_lin_nf": ("vae_lin_nf", [], None),
    "vae_iaf": ("vae_iaf", [], None),
}
# The orderings the papers report, checked on every dataset's means: (better, worse).
ORDERINGS = [("iwae/k5", "dense_vae"), ("iwae/k50", "dense_vae"), ("iwae/k50", "iwae/k5"),
             ("vamp_vae", "dense_vae"), ("hvae", "dense_vae"),
             # A richer posterior tightens the bound: Rezende & Mohamed 2015, Kingma et al. 2016.
             ("vae_lin_nf", "dense_vae"), ("vae_iaf", "dense_vae")]


def command(row, dataset, seed, args):
    model, overrides, _ = ROWS[row]
    run_dir = Path(args.runs) / dataset / row.replace("/", "-") / f"seed-{seed}"
    cmd = ["python", "train.py", "--model", model, "--dataset", dataset,
           "--epochs", str(args.epochs.get(dataset, EPOCHS[dataset])), "--run-dir", str(run_dir),
           "--set", f"train.seed={seed}", "--set", "data.binarize=true",
           "--set", f"eval.iw_samples={args.k}", "--set", f"eval.iw_examples={args.iw_examples}",
           "--set", "eval.pictures=false"]
    if not any(override.startswith("train.precision=") for override in overrides):
        overrides = ["train.precision=float32", *overrides]  # not `auto`: the same on any machine
    for override in overrides:
        cmd += ["--set", override]
    return cmd, run_dir


def summarise(dataset, row, runs):
    """One table row from the runs of every seed."""
    tests = [metrics["test"] for metrics, _ in runs]
    timings = [timing for _, timing in runs if timing]
    paper = ROWS[row][2]
    summary = {"dataset": dataset, "row": row, "model": ROWS[row][0], "seeds": len(runs),
               "epochs": runs[0][0]["epochs"], "train_images": runs[0][0]["sizes"]["train"],
               "iw_samples": tests[0].get("iw_samples"), "iw_examples": tests[0].get("iw_examples"),
               "paper": paper[0] if paper and dataset == "mnist_sample" else None,
               "paper_source": paper[1] if paper and dataset == "mnist_sample" else None,
               "per_seed": [{"elbo": t.get("elbo"), "iw_nll": t.get("iw_nll"),
                             "active_units": t.get("active_units"),
                             "train_seconds": m["train_seconds"]} for (m, _), t in zip(runs, tests)]}
    for key in ("elbo", "iw_nll", "reconstruction_mse"):
        summary[key], summary[f"{key}_sd"], summary[f"{key}_text"] = mean_sd(
            [t.get(key) for t in tests], 4 if key == "reconstruction_mse" else 2)
    summary["active_units"] = (f"{np.mean([t['active_units'] for t in tests]):.1f}"
                               f"/{tests[0]['latent_dim']}")
    summary["train_minutes"] = round(np.mean([m["train_seconds"] for m, _ in runs]) / 60, 1)
    for key in ("wall_minutes", "cpu_minutes"):
        summary[key] = (round(float(np.mean([t[key] for t in timings])), 1) if timings else None)
    return summary


def orderings(rows):
    """Which of the papers' orderings hold on the means, with the seed-to-seed spread."""
    found = []
    by_key = {(r["dataset"], r["row"]): r for r in rows}
    for dataset in sorted({r["dataset"] for r in rows}):
        for better, worse in ORDERINGS:
            a, b = by_key.get((dataset, better)), by_key.get((dataset, worse))
            if not a or not b or a["iw_nll"] is None or b["iw_nll"] is None:
                continue
            gap = b["iw_nll"] - a["iw_nll"]
            spread, verdict = ordering_verdict(gap, a["iw_nll_sd"], b["iw_nll_sd"])
            found.append(f"{dataset}: {better} below {worse} by {gap:.2f} nats "
                         f"(largest sd {spread:.2f}): {verdict}")
    return found


def table(rows, args):
    lines = [
        f"Quality after equal budgets (epochs per dataset as listed), dynamically binarised images, "
        f"Bernoulli p(x|z); mean ± sd over seeds. ELBO on the whole test split; IW NLL with k = "
        f"{args.k} importance samples on the first {args.iw_examples} test images (nats per image, "
        f"lower is better). Paper numbers are on the full MNIST test set after full training: "
        f"compare orderings, not values.", "",
        "| dataset | row | seeds | epochs | test ELBO | IW NLL | paper NLL | active units "
        "| train min | run min | run CPU min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['row']} | {r['seeds']} | {r['epochs']} | {r['elbo_text']} | "
            f"{r['iw_nll_text']} | {r['paper'] if r['paper'] is not None else ''} | "
            f"{r['active_units']} | {r['train_minutes']} | {r['wall_minutes'] or ''} | "
            f"{r['cpu_minutes'] or ''} |")
    checks = orderings(rows)
    if checks:
        lines += ["", "The papers' orderings:", ""] + [f"- {check}" for check in checks]
    sources = sorted({(r["row"], r["paper_source"]) for r in rows if r["paper_source"]})
    if sources:
        lines += ["", "Paper numbers:", ""] + [f"- {row}: {source}" for row, source in sources]
    lines += ["", "Commands (one per seed; `train.seed` varies):", ""]
    lines += [f"    {command}" for r in rows for command in r["commands"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--datasets", nargs="*", default=["mnist_sample", "fashion_mnist"],
                        choices=list(EPOCHS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    parser.add_argument("--iw-examples", type=int, default=500,
                        help="test images for the IW NLL (the ELBO uses all)")
    parser.add_argument("--mnist-epochs", type=int, default=EPOCHS["mnist_sample"])
    parser.add_argument("--fashion-epochs", type=int, default=EPOCHS["fashion_mnist"])
    add_seed_run_arguments(parser, RUNS)
    args = parser.parse_args()
    args.epochs = {"mnist_sample": args.mnist_epochs, "fashion_mnist": args.fashion_epochs}

    rows = []
    for dataset in args.datasets:
        for row in args.rows:
            runs, commands = [], []
            for seed in args.seeds:
                cmd, run_dir = command(row, dataset, seed, args)
                run = seed_run([cmd], run_dir, ROOT, args.fresh, args.table_only)
                if run is None:
                    continue
                runs.append(run)
                commands.append(shown(cmd, ROOT))
                test = run[0]["test"]
                print(f"  test ELBO {test.get('elbo', float('nan')):.2f}, IW NLL "
                      f"{test.get('iw_nll', float('nan')):.2f} nats", flush=True)
            if runs:
                rows.append({**summarise(dataset, row, runs), "commands": commands})
    rows = with_stored_rows(rows, args.out, "quality", key=lambda r: (r["dataset"], r["row"]),
                            order=[(d, r) for d in EPOCHS for r in ROWS])
    write_results(args.out, "quality", table(rows, args), rows)
    plots.quality(rows, args.out)


if __name__ == "__main__":
    main()
