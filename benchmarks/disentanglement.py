"""The disentanglement table: the zoo's disentangling models on dSprites, every metric of
disentanglement_lib as mean ± sd over seeds, with training time.

    python benchmarks/disentanglement.py                       # every row, 3 seeds
    python benchmarks/disentanglement.py --rows beta_vae factor_vae --seeds 0
    python benchmarks/disentanglement.py --table-only          # the table from finished runs
    python benchmarks/disentanglement.py --table-only --pictures   # and each row's pictures

Each run is `python train.py --model M --dataset dsprites` on a budget a 2-core machine affords
(`--train-images` drawn from the grid, `--epochs` passes), then `python evaluate.py RUN
--disentanglement` (metric sample sizes capped at `--points`; None keeps disentanglement_lib's
10,000/5,000). Both commands are printed and tabled. Every row uses the same conv network and
latent size (10, as in disentanglement_lib's study), so rows differ only by their objective.
Finished runs with unchanged commands are reused (`--fresh` trains again); rows not asked for
(`--rows`) keep their stored results. Writes
benchmarks/results/disentanglement.{md,json}; runs go to benchmarks/runs/disentanglement/.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import mean_sd  # noqa: E402
from benchmarks.common import ordering_verdict  # noqa: E402
from benchmarks.common import seed_run  # noqa: E402
from benchmarks.common import shown  # noqa: E402
from benchmarks.common import with_stored_rows  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

RUNS = ROOT / "benchmarks" / "runs" / "disentanglement"
# The shared network: disentanglement_lib's conv encoder is 4 stride-2 convs (32, 32, 64, 64)
# and a 256-unit layer; 10 latents.
# Every row trains in mixed bfloat16: 1.4x the images per CPU-second of float32 on AVX512-BF16,
# the same IW NLL within the seed-to-seed spread (benchmarks/quality.py's conv_vae rows).
NETWORK = ["train.precision=mixed_bfloat16",
           "model.network=conv", "model.filters=[32,32,64,64]", "model.hidden_units=[256]",
           "model.latent_dim=10"]
# name -> (zoo model, its overrides)
ROWS = {
    "vae": ("beta_vae", ["model.beta=1.0"]),
    "beta_vae": ("beta_vae", ["model.beta=4.0"]),
    "beta_vae/capacity": ("beta_vae", ["model.capacity=true"]),
    "beta_tcvae": ("beta_tcvae", []),
    "factor_vae": ("factor_vae", []),
    "dip_vae/i": ("dip_vae", ["model.dip_type=i"]),
    "dip_vae/ii": ("dip_vae", ["model.dip_type=ii"]),
}
# metric -> (key in metrics.json's "disentanglement", column title)
COLUMNS = [(("beta_vae", "eval_accuracy"), "BetaVAE"), (("factor_vae", "eval_accuracy"),
           "FactorVAE"), (("mig", "discrete_mig"), "MIG"), (("dci", "disentanglement"), "DCI D"),
           (("dci", "completeness"), "DCI C"), (("dci", "informativeness_test"), "DCI I"),
           (("sap", "SAP_score"), "SAP")]


# The papers' claims on dSprites, checked on the means: (better row, worse row, column, source).
ORDERINGS = [
    ("beta_vae", "vae", "BetaVAE", "Higgins et al. 2017: beta > 1 scores above the VAE"),
    ("factor_vae", "beta_vae", "FactorVAE", "Kim & Mnih 2018: FactorVAE above beta-VAE"),
    ("beta_tcvae", "beta_vae", "MIG", "Chen et al. 2018: beta-TCVAE above beta-VAE"),
    ("dip_vae/i", "vae", "SAP", "Kumar et al. 2018: DIP-VAE above the VAE"),
    ("dip_vae/ii", "vae", "SAP", "Kumar et al. 2018: DIP-VAE above the VAE"),
    ("beta_vae/capacity", "beta_vae", "test ELBO",
     "Burgess et al. 2018: capacity control reconstructs better than beta-VAE"),
]


def commands(row, seed, args):
    model, overrides = ROWS[row]  # capacity beta_vae ramps C over its default 2/3 of the run
    run_dir = Path(args.runs) / row.replace("/", "-") / f"seed-{seed}"
    train = ["python", "train.py", "--model", model, "--dataset", "dsprites",
             "--epochs", str(args.epochs), "--run-dir", str(run_dir),
             "--set", f"train.seed={seed}", "--set", f"data.train_limit={args.train_images}",
             "--set", "data.test_limit=2000", "--set", "eval.iw_samples=10",
             "--set", "eval.iw_examples=200", "--set", "eval.pictures=false"]
    for override in NETWORK + overrides:
        train += ["--set", override]
    evaluate = ["python", "evaluate.py", str(run_dir), "--disentanglement", "-k", "10",
                "--examples", "200"]
    if args.points:
        evaluate += ["--disentanglement-points", str(args.points)]
    evaluate.append("--no-pictures")  # `--pictures` draws from the stored scores instead
    return [train, evaluate], run_dir


def draw_pictures(run_dir):
    """DCI's importance heat map and the labelled traversals of a finished run, from the scores
    in its metrics.json: no training and no scoring again. Returns the PNGs' paths."""
    from vae_zoo.config import RunConfig
    from vae_zoo.data import load_data
    from vae_zoo.evaluation.disentanglement import report
    from vae_zoo.run_folder import RunFolder

    run = RunFolder(run_dir)
    config = RunConfig.from_dict(run.read_config())
    ground_truth = load_data(config.data, seed=config.train.seed).ground_truth
    scores = run.read_metrics()["disentanglement"]
    drawn = report.draw_pictures(run.load_model(), ground_truth, scores, run,
                                 step=config.train.epochs)
    return [Path(run_dir) / path for path in drawn]


def summarise(row, runs, command_texts):
    scores = [metrics["disentanglement"] for metrics, _ in runs]
    summary = {"row": row, "model": ROWS[row][0], "seeds": len(runs),
               "train_minutes": round(sum(m["train_seconds"] for m, _ in runs) / len(runs) / 60, 1),
               "commands": command_texts,
               "per_seed": [{title: s[metric][key] for (metric, key), title in COLUMNS}
                            for s in scores]}
    for (metric, key), title in COLUMNS:
        mean, sd, text = mean_sd([s[metric][key] for s in scores], 3)
        summary[title] = {"mean": mean, "sd": sd, "text": text}
    mean, sd, text = mean_sd([m["test"].get("elbo") for m, _ in runs])
    summary["test ELBO"] = {"mean": mean, "sd": sd, "text": text}
    units = [m["test"].get("active_units") for m, _ in runs]
    summary["active_units"] = (round(float(np.mean(units)), 1)
                               if None not in units else None)
    cpu = [timing["cpu_minutes"] for _, timing in runs if timing]
    summary["run_cpu_minutes"] = round(sum(cpu) / len(cpu), 1) if cpu else None
    return summary


def orderings(rows):
    """Which of the papers' orderings hold on the means, with the seed-to-seed spread."""
    found = []
    by_row = {r["row"]: r for r in rows}
    for better, worse, column, source in ORDERINGS:
        if better not in by_row or worse not in by_row:
            continue
        a, b = by_row[better][column], by_row[worse][column]
        if a["mean"] is None or b["mean"] is None:
            continue
        gap = a["mean"] - b["mean"]
        spread, verdict = ordering_verdict(gap, a["sd"], b["sd"])
        found.append(f"{better} above {worse} on {column} by {gap:.3f} (largest sd "
                     f"{spread:.3f}), {source}: {verdict}")
    return found


def table(rows, args):
    titles = [title for _, title in COLUMNS]
    points = (f"capped at {args.points:,} points" if args.points
              else "disentanglement_lib's 10,000 / 5,000")
    lines = [
        f"dSprites (drawn in code), {args.train_images:,} training images x {args.epochs} "
        f"epochs, conv network, 10 latents; metrics on the posterior mean with sample sizes "
        f"{points}; mean ± sd over seeds. Higher is better for every metric.", "",
        "| row | seeds | " + " | ".join(titles) + " | test ELBO | active units "
        "| train min | run CPU min |",
        "|---|---|" + "---|" * len(titles) + "---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['row']} | {r['seeds']} | "
                     + " | ".join(r[title]["text"] for title in titles)
                     + f" | {r['test ELBO']['text']} | {r['active_units']} | {r['train_minutes']} | "
                     f"{r['run_cpu_minutes'] or ''} |")
    checks = orderings(rows)
    if checks:
        lines += ["", "The papers' orderings:", ""] + [f"- {check}" for check in checks]
    lines += ["", "Commands (per seed; `train.seed` varies):", ""]
    lines += [f"    {text}" for r in rows for text in r["commands"]]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--train-images", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--points", type=int, default=3000,
                        help="cap on every metric's sample sizes (0: disentanglement_lib's)")
    parser.add_argument("--pictures", action="store_true",
                        help="draw DCI's heat map and the labelled traversals of each row's "
                             "first seed, from its stored scores")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--runs", default=str(RUNS))
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    rows = []
    for row in args.rows:
        runs, texts = [], []
        for seed in args.seeds:
            cmds, run_dir = commands(row, seed, args)
            run = seed_run(cmds, run_dir, ROOT, args.fresh, args.table_only)
            if run is None:
                continue
            runs.append(run)
            texts += [shown(c, ROOT) for c in cmds]
            if args.pictures and seed == args.seeds[0]:
                for path in draw_pictures(run_dir):
                    print(f"  drew {shown([str(path)], ROOT)}", flush=True)
        if runs:
            rows.append(summarise(row, runs, texts))
    rows = with_stored_rows(rows, args.out, "disentanglement", key=lambda r: r["row"],
                            order=ROWS)
    write_results(args.out, "disentanglement", table(rows, args), rows)


if __name__ == "__main__":
    main()
