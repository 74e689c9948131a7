"""The generation table: how good every zoo model's samples are from its own prior and from the
ex-post samplers fitted to its codes (gmm, two_stage, maf), over several seeds (mean +- sd).

    python benchmarks/generation.py                                # every model, both datasets
    python benchmarks/generation.py --models conv_vae ae --datasets mnist_sample --seeds 0
    python benchmarks/generation.py --table-only                   # the table from finished runs

Each run is an ordinary `python train.py`, `python -m vae_zoo.sample RUN --sampler NAME` for each
sampler (which also draws RUN/pictures/samples_NAME.png) and `python evaluate.py RUN --samplers
gmm two_stage maf` (printed and written to the table, so each can be repeated alone); the samples are scored
by the Fréchet distance (FD), precision and recall in the zoo's classifier features against
2,000 test images (docs/sample_quality.md: comparable across zoo models, not an Inception FID).
Runs go to `benchmarks/runs/generation/<dataset>/<model>/seed-<n>` and are reused when their
commands are unchanged, so the table grows over several sittings. pythae's benchmark (Chadebec
et al. 2022) finds the fitted Gaussian mixture improving on N(0, I) for most autoencoders; the
table checks that ordering per model against the seed-to-seed spread. Writes
benchmarks/results/generation.{md,json,png} and, per dataset measured, generation_samples.png
(mnist_sample) or generation_samples_<dataset>.png: a grid of samples per model and sampler,
from seed 0, drawn when the seed-0 runs of every row of the dataset's table are at hand. Rows
not asked for keep their stored results.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that `python benchmarks/<script>.py` finds the repo's packages

from benchmarks import plots  # noqa: E402
from benchmarks.common import add_seed_run_arguments  # noqa: E402
from benchmarks.common import mean_sd  # noqa: E402
from benchmarks.common import ordering_verdict  # noqa: E402
from benchmarks.common import seed_run  # noqa: E402
from benchmarks.common import shown  # noqa: E402
from benchmarks.common import with_stored_rows  # noqa: E402
from benchmarks.common import write_results  # noqa: E402

RUNS = ROOT / "benchmarks" / "runs" / "generation"
# About the same number of training images on both: 10 x 4,750 = 47,500 and 1 x 57,000; short
# (every zoo model, 3 seeds, two datasets), enough for the codes to hold digits (the pictures).
EPOCHS = {"mnist_sample": 10, "fashion_mnist": 1}
SAMPLERS = ["gmm", "two_stage", "maf"]
COLUMNS = ["prior", *SAMPLERS]
PICTURED = 8  # samples per model and sampler in generation_samples.png


def zoo_models():
    """Every zoo model, and the names of those whose codes take an ex-post sampler."""
    from vae_zoo.config import available_models
    from vae_zoo.samplers.codes import applicable_models

    return available_models(), set(applicable_models())


def commands(model, dataset, seed, args, takes_samplers):
    run_dir = Path(args.runs) / dataset / model / f"seed-{seed}"
    train = ["python", "train.py", "--model", model, "--dataset", dataset,
             "--epochs", str(args.epochs[dataset]), "--run-dir", str(run_dir),
             "--set", f"train.seed={seed}", "--set", "train.precision=float32",
             "--set", "eval.pictures=false", "--set", "eval.quality_images=0"]
    fits = []
    for sampler in args.samplers if takes_samplers else ():
        fits.append(["python", "-m", "vae_zoo.sample", str(run_dir), "--sampler", sampler,
                     "--n", "36"])
        if args.sampler_steps and sampler in ("maf", "two_stage"):
            fits[-1] += ["--steps", str(args.sampler_steps)]
    evaluate = ["python", "evaluate.py", str(run_dir), "-k", "100", "--examples", "500",
                "--no-pictures", "--quality-images", str(args.quality_images)]
    if takes_samplers and args.samplers:
        evaluate += ["--samplers", *args.samplers]
    return [train, *fits, evaluate], run_dir


def scores(test, column):
    """`(fd, precision, recall)` of one sampler column in a run's test metrics (None: absent)."""
    prefix = "sample_" if column == "prior" else f"{column}_sample_"
    return tuple(test.get(f"{prefix}{key}") for key in ("fd", "precision", "recall"))


def summarise(dataset, model, runs, run_dirs):
    tests = [metrics["test"] for metrics, _ in runs]
    timings = [timing for _, timing in runs if timing]
    row = {"dataset": dataset, "model": model, "seeds": len(runs),
           "epochs": runs[0][0]["epochs"], "quality_images": tests[0].get("quality_images"),
           "run_dirs": [shown([str(d)], ROOT) for d in run_dirs],
           "per_seed": [{column: dict(zip(("fd", "precision", "recall"), scores(t, column)))
                         for column in COLUMNS} for t in tests],
           "reconstruction_fd": mean_sd([t.get("reconstruction_fd") for t in tests])[0]}
    for column in COLUMNS:
        for i, key in enumerate(("fd", "precision", "recall")):
            mean, sd, text = mean_sd([scores(t, column)[i] for t in tests],
                                     1 if key == "fd" else 3)
            row[f"{column}_{key}"], row[f"{column}_{key}_sd"] = mean, sd
            row[f"{column}_{key}_text"] = text
    measured = {c: row[f"{c}_fd"] for c in COLUMNS if row[f"{c}_fd"] is not None}
    row["best"] = min(measured, key=measured.get) if measured else None
    for key in ("wall_minutes", "cpu_minutes"):
        row[key] = round(float(np.mean([t[key] for t in timings])), 1) if timings else None
    return row


def orderings(rows):
    """pythae's finding, per model: the fitted GMM's samples score a lower FD than the prior's."""
    found = []
    for r in rows:
        if r["gmm_fd"] is None or r["prior_fd"] is None:
            continue
        gap = r["prior_fd"] - r["gmm_fd"]
        if r["prior_fd_sd"] is None and r["gmm_fd_sd"] is None:  # one seed: no spread to weigh
            spread, verdict = None, "holds on one seed" if gap > 0 else "does NOT hold (one seed)"
            weighed = "one seed"
        else:
            spread, verdict = ordering_verdict(gap, r["prior_fd_sd"], r["gmm_fd_sd"])
            weighed = f"largest sd {spread:.1f}"
        found.append({"dataset": r["dataset"], "model": r["model"], "gap": gap,
                      "spread": spread, "verdict": verdict,
                      "text": f"{r['dataset']}: {r['model']}: gmm below prior by {gap:.1f} FD "
                              f"({weighed}): {verdict}"})
    return found


def table(rows, args):
    lines = [
        f"Sample quality from each model's prior and from ex-post samplers fitted to the posterior "
        f"means of its training images, after equal budgets (epochs per dataset as listed); mean ± "
        f"sd over seeds. FD: Fréchet distance of {args.quality_images} samples to as many test "
        f"images in the zoo's classifier features (lower is better; not an Inception FID); P/R: "
        f"precision and recall (Kynkäänniemi et al. 2019, k = 3). Samplers: gmm 10 components, "
        f"two_stage {args.sampler_steps or 2000:,} steps, maf {args.sampler_steps or 1000:,} "
        f"steps, fitted to all training codes. '–': the model takes no "
        f"ex-post sampler (discrete or label-conditioned codes).", "",
        "| dataset | model | seeds | epochs | prior FD | gmm FD | two_stage FD | maf FD | best "
        "| prior P / R | gmm P / R | run min | run CPU min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pr = {c: (f"{r[f'{c}_precision_text']} / {r[f'{c}_recall_text']}"
                  if r[f"{c}_precision"] is not None else "–") for c in ("prior", "gmm")}
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['seeds']} | {r['epochs']} | "
            + " | ".join(r[f"{c}_fd_text"] for c in COLUMNS)
            + f" | {r['best'] or ''} | {pr['prior']} | {pr['gmm']} | {r['wall_minutes'] or ''} "
              f"| {r['cpu_minutes'] or ''} |")
    checks = orderings(rows)
    if checks:
        held = sum("NOT" not in c["verdict"] for c in checks)
        lines += ["", f"pythae's ordering (the GMM sampler improves on the prior): holds for "
                      f"{held} of {len(checks)} rows.", ""]
        lines += [f"- {c['text']}" for c in checks]
    lines += ["", "Commands (per seed; `train.seed` varies):", ""]
    lines += [f"    {command}" for r in rows for command in r["commands"]]
    return "\n".join(lines)


def sample_grid(rows, dataset, out, seed=0):
    """`generation_samples[_<dataset>].png`: per model (a row) PICTURED samples from each
    sampler, from the seed-0 runs of `dataset` in `rows`."""
    from vae_zoo.run_folder import RunFolder
    from vae_zoo.samplers.codes import sampler_images
    from vae_zoo.samplers.codes import stored_sampler

    pictured = []
    for r in rows:
        if r["dataset"] != dataset:
            continue
        run = RunFolder(ROOT / r["run_dirs"][0])
        model = run.load_model()
        images = {}
        for column in COLUMNS:
            try:
                if column == "prior":
                    drawn = model.sample(PICTURED, seed=seed)
                elif r[f"{column}_fd"] is None:
                    continue
                else:
                    drawn = sampler_images(model, stored_sampler(run, model, column), PICTURED,
                                           seed)
            except NotImplementedError:
                continue
            images[column] = np.asarray(drawn)
        pictured.append((r["model"], images))
    name = "generation_samples" + ("" if dataset == "mnist_sample" else f"_{dataset}")
    return plots.generation_samples(pictured, COLUMNS, dataset, out, name)


def main():
    all_models, takes_samplers = zoo_models()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=all_models, choices=all_models)
    parser.add_argument("--datasets", nargs="*", default=list(EPOCHS), choices=list(EPOCHS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--mnist-epochs", type=int, default=EPOCHS["mnist_sample"])
    parser.add_argument("--fashion-epochs", type=int, default=EPOCHS["fashion_mnist"])
    parser.add_argument("--quality-images", type=int, default=2000,
                        help="samples per sampler, scored against as many test images")
    parser.add_argument("--samplers", nargs="*", default=SAMPLERS, choices=SAMPLERS,
                        help="the ex-post samplers fitted and scored (default: all)")
    parser.add_argument("--sampler-steps", type=int,
                        help="training steps of maf and two_stage (default: theirs)")
    add_seed_run_arguments(parser, RUNS)
    args = parser.parse_args()
    args.epochs = {"mnist_sample": args.mnist_epochs, "fashion_mnist": args.fashion_epochs}

    rows = []
    for dataset in args.datasets:
        for model in args.models:
            runs, shown_commands, run_dirs = [], [], []
            for seed in args.seeds:
                cmds, run_dir = commands(model, dataset, seed, args, model in takes_samplers)
                run = seed_run(cmds, run_dir, ROOT, args.fresh, args.table_only)
                if run is None:
                    continue
                runs.append(run)
                run_dirs.append(run_dir)
                shown_commands += [shown(cmd, ROOT) for cmd in cmds]
                test = run[0]["test"]
                print("  " + ", ".join(f"{c} FD {scores(test, c)[0]:.1f}" for c in COLUMNS
                                       if scores(test, c)[0] is not None), flush=True)
            if runs:
                rows.append({**summarise(dataset, model, runs, run_dirs),
                             "commands": shown_commands})
    if not rows:
        sys.exit("no finished runs to tabulate")
    rows = with_stored_rows(rows, args.out, "generation", key=lambda r: (r["dataset"], r["model"]),
                            order=[(d, m) for d in EPOCHS for m in all_models])
    write_results(args.out, "generation", table(rows, args), rows)
    plots.generation(rows, args.out)
    for dataset in args.datasets:  # a grid short of some of its table's rows is not drawn
        these = [r for r in rows if r["dataset"] == dataset]
        gone = [r["model"] for r in these if not (ROOT / r["run_dirs"][0]).exists()]
        if these and not gone:
            sample_grid(these, dataset, args.out)
        elif these:
            print(f"{dataset}'s sample grid is kept: the runs of {', '.join(gone)} are not here")


if __name__ == "__main__":
    main()
