"""The results as pictures: one PNG beside each benchmark's table, also shown on the docs site.

Each benchmark script calls its function here when it writes its results, and

    python benchmarks/plots.py

draws every PNG again from the stored JSON in benchmarks/results/, without measuring anything
(the benchmarks take tens of CPU-minutes; a plot takes a second). A PNG written to the default
results folder is also copied to docs/results/, the folder the documentation site serves (MkDocs
only publishes files under docs/); a test checks that the two copies agree.

Each PNG carries a digest of the data it was drawn from (its `Data` text chunk), so that a test
can tell a plot older than its JSON (a benchmark's results changed, the plot was not redrawn)
without comparing pixels, which differ between matplotlib versions.
"""

import hashlib
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DOCS_RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
LINKS = ["loopback / unshaped veth", "10 Gbit/s", "1 Gbit/s"]  # network.py's predicted links
# A measured link's colour is its predicted line's (C0, C1, C2 in LINKS' order).
MEASURED_STYLE = {"loopback": ("C0", "o"), "veth": ("C0", "^"), "10gbit": ("C1", "o"),
                  "1gbit": ("C2", "o"), "1gbit+2ms": ("C2", "^"), "100mbit": ("C3", "o")}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: benchmarks and CI run headless
    import matplotlib.pyplot as plt

    return plt


def digest(*data):
    """A short hash of the data a plot is drawn from, as stored in JSON (int keys become str)."""
    h = hashlib.sha256()
    for part in data:
        h.update(json.dumps(json.loads(json.dumps(part)), sort_keys=True).encode())
    return h.hexdigest()[:16]


def _save(fig, name, out, source):
    """Writes `out/<name>.png` with the digest of its `source` data; from the default results
    folder, also the site's copy."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    # No software version in the file, so that redrawing unchanged data changes no byte.
    fig.savefig(path, dpi=100, metadata={"Software": None, "Data": source})
    _pyplot().close(fig)
    if out.resolve() == RESULTS:
        DOCS_RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_RESULTS / path.name)
    return path


def _dataset_panels(rows, height):
    """A figure with one panel per dataset of `rows` (side by side, `height` inches tall):
    `(fig, [(ax, dataset, that dataset's rows)])`."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), height), squeeze=False)
    return fig, [(ax, dataset, [r for r in rows if r["dataset"] == dataset])
                 for ax, dataset in zip(axes[0], datasets)]


def quality(rows, out=RESULTS):
    """IW NLL per model with its seed-to-seed sd (quality.json), one panel per dataset; the
    papers' NLL where there is one. Lower is better."""
    fig, panels = _dataset_panels(rows, height=4.5)
    for ax, dataset, these in panels:
        y = range(len(these))
        ax.errorbar([r["iw_nll"] for r in these], y, xerr=[r.get("iw_nll_sd") or 0 for r in these],
                    fmt="o", capsize=4, label="ours: mean ± sd over seeds")
        papers = [(r["paper"], i) for i, r in zip(y, these) if r.get("paper")]
        if papers:
            ax.plot(*zip(*papers), "x", color="grey", label="paper (full MNIST, longer training)")
        ax.set_yticks(list(y), [f"{r['row']} ({r['seeds']} seed{'s' * (r['seeds'] > 1)})"
                                for r in these])
        ax.invert_yaxis()
        ax.set(xlabel="IW NLL, nats per image (lower is better)",
               title=f"{dataset}: {these[0]['epochs']} epochs, k = {these[0]['iw_samples']}")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, "quality", out, digest(rows))


SAMPLER_STYLE = {"prior": ("C7", "o"), "gmm": ("C0", "s"), "two_stage": ("C1", "^"),
                 "maf": ("C2", "D")}


def generation(rows, out=RESULTS):
    """Sample FD per model from its prior and each ex-post sampler, with the seed-to-seed sd
    (generation.json), one panel per dataset. Lower is better."""
    plt = _pyplot()
    most = max(Counter(r["dataset"] for r in rows).values())
    fig, panels = _dataset_panels(rows, height=1.5 + 0.3 * most)
    for ax, dataset, these in panels:
        for k, (column, (colour, marker)) in enumerate(SAMPLER_STYLE.items()):
            points = [(r[f"{column}_fd"], i + 0.15 * (k - 1.5), r[f"{column}_fd_sd"] or 0)
                      for i, r in enumerate(these) if r.get(f"{column}_fd") is not None]
            if points:
                x, y, sd = zip(*points)
                ax.errorbar(x, y, xerr=sd, fmt=marker, color=colour, capsize=2, markersize=4,
                            label=column)
        ax.set_yticks(range(len(these)), [f"{r['model']} ({r['seeds']})" for r in these],
                      fontsize=8)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xticks([20, 50, 100, 200, 500], ["20", "50", "100", "200", "500"])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set(xlabel="sample FD in the zoo's classifier features (lower is better)",
               title=f"{dataset}: {these[0]['epochs']} epochs (seeds)")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return _save(fig, "generation", out, digest(rows))


def generation_samples(pictured, columns, dataset, out=RESULTS, name="generation_samples"):
    """A grid of samples, a row per model and a column per sampler: `pictured` is a list of
    `(model name, {column: images (n, H, W, C) in [0, 1]})`. Drawn from models, not from JSON:
    `benchmarks/generation.py` writes it, `python benchmarks/plots.py` does not."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(len(pictured), len(columns), squeeze=False,
                             figsize=(2.2 * len(columns) + 1, 0.5 * len(pictured) + 0.7))
    for i, (model, images) in enumerate(pictured):
        for j, column in enumerate(columns):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if i == 0:
                ax.set_title(column, fontsize=10)
            if j == 0:
                ax.set_ylabel(model, rotation=0, ha="right", va="center", fontsize=8)
            if column in images:
                strip = np.concatenate(list(np.clip(images[column], 0, 1)), axis=1)
                ax.imshow(strip[..., 0] if strip.shape[-1] == 1 else strip, cmap="gray",
                          vmin=0, vmax=1)
    fig.suptitle(f"Samples on {dataset} (seed 0): the prior and the ex-post samplers", fontsize=10)
    fig.tight_layout()
    source = digest([[model, sorted(images)] for model, images in pictured])
    return _save(fig, name, out, source)


def time_to_result(results, out=RESULTS):
    """Where a run's training time goes (the bare steps against the rest), vae_zoo against
    pythae, and the IW NLL's projected time (time_to_result.json); panels for the parts present."""
    plt = _pyplot()
    panels = [p for p in ("train", "pythae", "evaluation") if results.get(p)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel in ("train", "pythae"):
            rows = results[panel]
            names = [r["model"] if panel == "train" else r["who"] for r in rows]
            # pythae's own script clocks its training only as a whole: no split.
            steps = [r.get("bare_steps", r["train_wall"]) for r in rows]
            rest = [r["train_wall"] - s for r, s in zip(rows, steps)]
            ax.barh(names, steps, label="training and validation steps (pythae: all training)")
            ax.barh(names, rest, left=steps, label="everything else")
            for i, r in enumerate(rows):
                if "overhead" in r:
                    ax.text(r["train_wall"], i, f" {r['overhead']:.0%}", va="center", fontsize=8)
            ax.invert_yaxis()
            epochs = sorted({r["epochs"] for r in rows if "epochs" in r})
            ax.set(xlabel="training wall seconds (label: overhead over the steps)",
                   title=("every model, " if panel == "train" else "vae_zoo vs pythae, ")
                   + f"{'/'.join(map(str, epochs))} epochs, MNIST sample")
            ax.legend(fontsize=7, loc="best")
        else:
            rows = results["evaluation"]["rows"]
            minutes = [r["projected_minutes_10k_two_cores"] for r in rows]
            ax.barh([r["estimator"].replace(" (", "\n(") for r in rows], minutes)
            ax.axvline(45, color="grey", linestyle="--", label="target: 45 min")
            ax.invert_yaxis()
            ax.set(xlabel="minutes, projected for 2 free cores",
                   title="IW NLL, k = 5000 on 10,000 test images")
            ax.tick_params(axis="y", labelsize=7)
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, "time_to_result", out, digest(results))


def network(data, out=RESULTS, conditions=None, models=None):
    """The scaling model against the measured all-reduces, and its predicted speed-up of the
    first model (network.json): benchmarks/network.py's picture. `conditions` and `models`
    default to the run's own (`data["args"]`)."""
    plt = _pyplot()
    args = {**data["args"], **({"conditions": conditions} if conditions else {}),
            **({"models": models} if models else {})}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for condition in ["1 worker", *args["conditions"]]:
        points = sorted((p["bytes"], p["ms"], p["model_ms"]) for p in data["fit_points"]
                        if p["condition"] == condition)
        if not points:
            continue
        x = [p[0] / 1e6 for p in points]
        line, = left.loglog(x, [p[1] for p in points], "o", label=condition)
        left.loglog(x, [p[2] for p in points], "-", color=line.get_color(), alpha=0.6)
    left.set(xlabel="all-reduce size (MB)", ylabel="ms (dots: measured, lines: model)",
             title="2-worker all-reduce by link")
    left.legend(fontsize=7)
    model = args["models"][0]
    for row in data["predictions"]:
        if row["model"] == model:
            style = "--" if row["global_batch"] else "-"
            right.plot([1, 2, 4, 8, 16], [1] + [_at(row, n)["speedup"] for n in (2, 4, 8, 16)],
                       style, marker="o", label=f"{row['link']}, "
                       + ("global batch fixed" if row["global_batch"] else "per-worker batch fixed"))
    right.plot([1, 16], [1, 16], ":", color="grey", label="linear")
    right.set(xlabel="workers N", ylabel="speed-up (images/s, or time per global step)",
              title=f"{model}: predicted speed-up")
    right.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, "network", out, digest(data))


def _at(row, n):
    """A prediction's entry for N workers: int keys in memory, str keys once stored as JSON."""
    return row[n] if n in row else row[str(n)]


def multi_worker(network_data, runs, out=RESULTS):
    """Multi-worker scaling measured against the scaling model's prediction. Left: conv_vae's
    predicted speed-up at N workers (per-worker batch fixed; network.json) with the measured
    2-worker speed-ups: each link's 2-worker step against one process's (network.json) and the
    one-machine benchmark (multi_worker*.json). Right: every one-machine setup's speed-up.

    `runs` maps a label to a multi_worker*.json's data."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    model, batch = "conv_vae", network_data["args"]["per_worker_batch"]
    ns = [1, 2, 4, 8, 16]
    for row in network_data["predictions"]:
        if row["model"] == model and not row["global_batch"] and row["link"] in LINKS:
            left.plot(ns, [1] + [_at(row, n)["speedup"] for n in ns[1:]], "-", alpha=0.7,
                      label=f"model: {row['link']}")
    steps = network_data["steps"]

    def step(condition, size):
        values = sorted(s["step_ms"] for s in steps if s["model"] == model
                        and s["condition"] == condition and s["batch_size"] == size)
        return values[len(values) // 2] if values else None

    one = step("1 process", batch)
    for condition in network_data["args"]["step_conditions"]:
        two = step(condition, 2 * batch)
        color, marker = MEASURED_STYLE.get(condition, ("C3", "o"))
        if one and two:
            left.plot(2, 2 * one / two, marker, color=color, alpha=0.8,
                      label=f"measured: {condition} (2 namespaces)")
    size = network_data["parameters"][model]
    for label, data in runs.items():
        if data.get("per_worker_batch") and data.get("parameters") == size:
            for s in data["summary"]:
                if s["setup"] == "2 workers":
                    left.plot(2, s["speed_up"], "s", color="black", alpha=0.6,
                              label=f"measured: one machine, {label}")
    left.plot([1, 16], [1, 16], ":", color="grey", label="linear")
    left.set(xlabel="workers N", ylabel="speed-up in images/s over one process",
             title=f"{model}, {batch} per worker: model vs measured",
             xscale="log", yscale="log")
    left.set_xticks(ns, [str(n) for n in ns])
    left.legend(fontsize=6)
    labels, values, colors = [], [], []
    for i, (label, data) in enumerate(runs.items()):
        for s in data["summary"]:
            labels.append(f"{label}: {s['setup']}")
            values.append(s["speed_up"])
            colors.append(f"C{i}")
    right.barh(labels, values, color=colors)
    right.axvline(1, color="grey", linestyle=":")
    for i, v in enumerate(values):
        right.text(v, i, f" {v:.2f}x", va="center", fontsize=7)
    right.invert_yaxis()
    right.tick_params(axis="y", labelsize=7)
    right.set(xlabel="train images/s against 1 process on 1 core",
              title="one machine, 2 cores")
    fig.tight_layout()
    return _save(fig, "multi_worker", out, digest(network_data, runs))


def serving(rows, out=RESULTS):
    """Latency of one `reconstruct` call at batch 1 and 64 per format (serving.json), log scale."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    names = [r["format"] for r in rows]
    y = range(len(rows))
    ax.barh([i - 0.2 for i in y], [r["batch1_ms"] for r in rows], height=0.4, label="batch 1")
    ax.barh([i + 0.2 for i in y], [r["batch64_ms"] for r in rows], height=0.4, label="batch 64")
    ax.set_yticks(list(y), [f"{n} ({r['bytes'] / 1e6:.1f} MB)" for n, r in zip(names, rows)])
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="ms per call (log scale; lower is better)",
           title="conv_vae reconstruct: latency by format")
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _save(fig, "serving", out, digest(rows))


def serving_load(data, out=RESULTS):
    """Serving under concurrent clients (serving_load.json): median latency with the 99th
    percentile as the bar's upper end, and the images/s each API carried."""
    plt = _pyplot()
    rows = data["rows"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    labels = [f"{r['api']}, batch {r['batch']}" for r in rows]
    p50 = [r["p50_ms"] for r in rows]
    left.barh(labels, p50, xerr=[[0] * len(rows), [r["p99_ms"] - r["p50_ms"] for r in rows]],
              capsize=3)
    left.invert_yaxis()
    left.set(xscale="log", xlabel="ms per request: p50, whisker to p99 (log scale)",
             title=f"{data['model']}, {data['clients']} clients, {data['cpu_count']} cores")
    right.barh(labels, [r["requests_per_s"] * r["batch"] for r in rows])
    right.invert_yaxis()
    right.set(xlabel="images/s served", title="throughput under load")
    for ax in (left, right):
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return _save(fig, "serving_load", out, digest(data))


def _load(name, folder):
    path = Path(folder) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


MULTI_WORKER_RUNS = {  # label: the stored table (benchmarks/multi_worker.py's --out names)
    "3 epochs, 128 per worker (allocator fix)": "multi_worker_per_worker_batch",
    "10 epochs, 128 per worker (before it, Xeon)": "multi_worker_per_worker_batch_10_epochs",
    "3 epochs, global batch 128 (before it, Xeon)": "multi_worker",
    "dense_vae, 3 epochs, 128 per worker (before it, Xeon)": "multi_worker_dense_vae_per_worker_batch",
    # a table main's multi_worker.py writes; drawn once it is in the results folder
    "Fashion-MNIST, 2 epochs, 128 per worker (allocator fix)": "multi_worker_per_worker_batch_fashion_mnist",
}


PLOTS = {"quality": quality, "generation": generation, "time_to_result": time_to_result,
         "network": network, "serving": serving, "serving_load": serving_load,
         "multi_worker": multi_worker}


def inputs(name, folder=RESULTS):
    """The stored data plot `name` is drawn from, as its function's arguments; None if missing."""
    if name != "multi_worker":
        data = _load(name, folder)
        return None if data is None else (data,)
    network_data = _load("network", folder)
    runs = {label: _load(stored, folder) for label, stored in MULTI_WORKER_RUNS.items()}
    runs = {label: data for label, data in runs.items() if data is not None}
    return (network_data, runs) if network_data and runs else None


def redraw(folder=RESULTS, out=RESULTS):
    """Every plot again from the JSON in `folder`; returns the PNGs written."""
    written = []
    for name, draw in PLOTS.items():
        data = inputs(name, folder)
        if data is None:
            print(f"skipped {name}: its JSON is not in {folder}", file=sys.stderr)
            continue
        written.append(draw(*data, out=out))
    return written


if __name__ == "__main__":
    for png in redraw():
        print(png.relative_to(Path.cwd()) if png.is_relative_to(Path.cwd()) else png)
