"""What every benchmark script shares: where results go and how they are written."""

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(out, name, table, data):
    """Prints the markdown table and writes it and the raw data to `out/<name>.{md,json}`."""
    print("\n" + table)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(table + "\n")
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def with_stored_rows(rows, out, name, key, order):
    """The rows just summarised, and every other row as `out/<name>.json` stores it (its
    commands say how it was run), in the order of the keys `order` (a row's key is `key(row)`;
    a stored row whose key is no longer there is dropped): rerunning some rows keeps the rest,
    even when their runs are gone."""
    path = Path(out) / f"{name}.json"
    stored = json.loads(path.read_text()) if path.exists() else []
    by_key = {**{key(r): r for r in stored}, **{key(r): r for r in rows}}
    return [by_key[k] for k in order if k in by_key]


def shown(command, root):
    """A command as a user types it from the repository's root."""
    return " ".join(shlex.quote(part) for part in command).replace(str(root) + "/", "")


def run_commands(commands, run_dir, root, fresh=False):
    """Runs `commands` (each `["python", script, ...]`) from `root` for one run folder, unless
    they already finished there: a stamp with their text is written last, so a run stopped half
    way is done again. Returns the timing `{"wall_minutes", "cpu_minutes"}` (of the first time
    when reused; None if that was not recorded)."""
    if not fresh and finished(commands, run_dir, root):
        print(f"  reusing {run_dir}", flush=True)
        return _recorded_timing(run_dir)
    if Path(run_dir).exists():
        shutil.rmtree(run_dir)
    start, cpu = time.perf_counter(), os.times()
    for command in commands:
        print(f"$ {shown(command, root)}", flush=True)
        result = subprocess.run([sys.executable, *command[1:]], cwd=root, capture_output=True,
                                text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if result.returncode != 0:
            sys.exit(f"failed: {shown(command, root)}\n{result.stderr[-3000:]}")
    after = os.times()
    timing = {"wall_minutes": (time.perf_counter() - start) / 60,
              "cpu_minutes": (after.children_user + after.children_system
                              - cpu.children_user - cpu.children_system) / 60}
    _timing_file(run_dir).write_text(json.dumps(timing))
    _stamp(run_dir).write_text(_stamp_text(commands, root))
    return timing


def _timing_file(run_dir):
    return Path(run_dir) / "benchmark_timing.json"


def _recorded_timing(run_dir):
    """The timing a finished run recorded the first time, or None if it recorded none."""
    timing_file = _timing_file(run_dir)
    return json.loads(timing_file.read_text()) if timing_file.is_file() else None


def _stamp(run_dir):
    return Path(run_dir) / "benchmark_commands.txt"


def _stamp_text(commands, root):
    return "\n".join(shown(command, root) for command in commands)


def finished(commands, run_dir, root):
    stamp = _stamp(run_dir)
    return stamp.is_file() and stamp.read_text() == _stamp_text(commands, root)


def seed_run(commands, run_dir, root, fresh=False, table_only=False):
    """One seed's run of a table: `(metrics.json, timing)` after running `commands` (or reusing
    them, see `run_commands`); with `table_only`, the finished run's or None, training nothing."""
    if table_only:
        if not finished(commands, run_dir, root):
            return None
        timing = _recorded_timing(run_dir)
    else:
        timing = run_commands(commands, run_dir, root, fresh)
    return json.loads((Path(run_dir) / "metrics.json").read_text()), timing


def add_seed_run_arguments(parser, runs):
    """The options of a table grown from reusable seed runs (`seed_run`): --fresh, --table-only,
    --runs (default `runs`) and --out."""
    parser.add_argument("--fresh", action="store_true", help="train again even when a finished "
                                                             "run with the same commands exists")
    parser.add_argument("--table-only", action="store_true",
                        help="only tabulate the runs that are finished; train nothing")
    parser.add_argument("--runs", default=str(runs), help="folder for the training runs")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the result tables")


def mean_sd(values, digits=2):
    """`(mean, sd with ddof 1 or None, "mean ± sd")` of the values that are not None."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None, "–"
    mean = float(np.mean(values))
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return mean, sd, f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if sd is not None else "")


def ordering_verdict(gap, *sds):
    """`(spread, verdict)` of a paper's ordering on table means: `gap` is positive when it holds
    and is weighed against the largest seed-to-seed sd (None counts as 0)."""
    spread = max(sd or 0.0 for sd in sds)
    verdict = ("holds" if gap > 2 * spread else "holds, within 2 sd" if gap > 0
               else "does NOT hold")
    return spread, verdict
