"""The run folder: what it holds, and the checks that keep one run from overwriting another."""

import json
import os
import tempfile
from pathlib import Path

import yaml

from vae_zoo.config.schema import load_yaml
from vae_zoo.errors import UserInputError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
BEST_CHECKPOINT = "checkpoints/best.keras"
BACKUP_DIR = "checkpoints/last"
TENSORBOARD_DIR = "tensorboard"


def default_run_dir(model_name, root="runs"):
    """`runs/<model>`, or `runs/<model>-2`, -3, ... when that one holds a run already."""
    candidate, n = Path(root) / model_name, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = Path(root) / f"{model_name}-{n}"
    return candidate


def latest_run_dir(model_name, root="runs"):
    """The newest run folder of `model_name` under `root`, for `--resume` without `--run-dir`."""
    runs = [p for p in Path(root).glob(f"{model_name}*") if (p / CONFIG_FILE).is_file()]
    runs = [p for p in runs if p.name == model_name or p.name[len(model_name):].lstrip("-").isdigit()]
    if not runs:
        raise UserInputError(f"--resume: no run of {model_name} under {root}/; pass --run-dir")
    return max(runs, key=lambda p: (p / CONFIG_FILE).stat().st_mtime)


def load_run_model(run_dir):
    """The finished model of a run folder (`model.keras`)."""
    import keras

    import vae_zoo  # noqa: F401  (registers the model classes with Keras)

    path = Path(run_dir) / MODEL_FILE
    if not path.is_file():
        raise UserInputError(f"{run_dir} holds no {MODEL_FILE}; pass a run folder that train.py finished")
    return keras.models.load_model(path)


def read_run_config(run_dir):
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UserInputError(f"--resume: {run_dir} holds no run ({CONFIG_FILE} is missing)")
    with open(path) as f:
        return load_yaml(f)


def check_new_run_dir(run_dir, config_dict):
    """Refuses a folder that holds anything, with the reason and what to do instead."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserInputError(f"run folder {run_dir} is a file")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return
    if not (run_dir / CONFIG_FILE).is_file():
        raise UserInputError(f"run folder {run_dir} is not empty and holds no vae_zoo run; choose another --run-dir")
    differences = config_differences(read_run_config(run_dir), config_dict)
    if differences:
        raise UserInputError(
            f"run folder {run_dir} holds a different run ({'; '.join(differences[:3])}); "
            "choose another --run-dir"
        )
    raise UserInputError(
        f"run folder {run_dir} holds this run already; pass --resume to continue it, "
        "or choose another --run-dir"
    )


def config_differences(old, new, prefix=""):
    """Human-readable `key: old -> new` lines for two nested config dicts."""
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            lines += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            lines.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return lines


def write_atomic(path, text):
    """Writes via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_config(run_dir, config_dict):
    write_atomic(Path(run_dir) / CONFIG_FILE, yaml.safe_dump(config_dict, sort_keys=False))


def write_metrics(run_dir, metrics):
    write_atomic(Path(run_dir) / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
