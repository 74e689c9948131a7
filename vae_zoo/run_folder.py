"""The run folder: the one object that knows every file of a run, and who may write them.

    runs/conv_vae/
      config.yaml            the validated config the run was started with
      history.csv            one row per epoch (losses, validation losses, schedules)
      checkpoints/best.keras weights of the best validation epoch
      checkpoints/steps/     the newest two step checkpoints, which a resumed run continues from
      model.keras            the finished model (the best epoch's weights)
      metrics.json           held-out metrics of the finished model
      pictures/              PNGs of what the model learned
      tensorboard/           train/validation scalars, images/, evaluation/, the projector
      profile/worker<rank>/  profiler traces of `train.profile_steps`, one folder per worker

A model trained in stages (a learned prior after the autoencoder) keeps the files above for its
first stage and, for each later stage NAME, `history-NAME.csv`, `checkpoints/best-NAME.keras` and
`tensorboard/NAME/` (its train/validation/images runs); epochs are numbered through the stages,
and the step checkpoints are shared (a checkpoint's epoch says which stage it is in).

Under multi-worker training only the chief writes the real folder; every other worker writes the
same files into a private temporary folder (`vae_zoo.distribute.write_dir`) that `cleanup()`
removes, as TF's multi-worker guides do, so two processes never write the same file. A worker
resuming a run starts that folder from the chief's histories and best checkpoints
(`start_from_chief`), so that every worker picks the same best epochs.
"""

import copy
import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from vae_zoo.config.schema import load_yaml
from vae_zoo.errors import UserInputError


class RunFolder:
    """Paths and reads/writes of one run folder.

    Args:
        path: str or Path. The run folder.
        cluster: the `vae_zoo.distribute.ClusterInfo` of this process, or None (one process).
    """

    CONFIG = "config.yaml"
    METRICS = "metrics.json"
    MODEL = "model.keras"
    HISTORY = "history.csv"
    BEST_CHECKPOINT = "checkpoints/best.keras"
    CHECKPOINTS = "checkpoints/steps"
    TENSORBOARD = "tensorboard"
    PICTURES = "pictures"
    PROFILE = "profile"

    stage = None  # the name of a training stage after the first (`for_stage`)

    def __init__(self, path, cluster=None):
        from vae_zoo.distribute import write_dir

        self.path = Path(path)
        self.is_chief = cluster is None or cluster.is_chief
        self.root = write_dir(self.path, cluster) if cluster is not None else self.path

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)

    # --- Paths (under `root`, the folder this process writes) --------------------------------

    def file(self, name):
        return self.root / name

    @property
    def config_path(self):
        return self.root / self.CONFIG

    @property
    def metrics_path(self):
        return self.root / self.METRICS

    @property
    def model_path(self):
        return self.root / self.MODEL

    @property
    def history_path(self):
        return self.root / self._staged(self.HISTORY)

    @property
    def best_checkpoint(self):
        return self.root / self._staged(self.BEST_CHECKPOINT)

    @property
    def stage_tensorboard_dir(self):
        """The TensorBoard folder of the stage's training curves (a subfolder after the first)."""
        return self.tensorboard_dir / self.stage if self.stage else self.tensorboard_dir

    @property
    def checkpoints_dir(self):
        return self.root / self.CHECKPOINTS

    @property
    def tensorboard_dir(self):
        return self.root / self.TENSORBOARD

    @property
    def pictures_dir(self):
        return self.root / self.PICTURES

    def create(self):
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def for_stage(self, name):
        """This run folder for a training stage after the first, named `name`: its own history
        (`history-NAME.csv`), best checkpoint (`checkpoints/best-NAME.keras`) and TensorBoard
        runs (`tensorboard/NAME/`); None: the first stage's files."""
        staged = copy.copy(self)
        staged.stage = name
        return staged

    def _staged(self, filename):
        if not self.stage:
            return filename
        stem, dot, suffix = filename.rpartition(".")
        return f"{stem}-{self.stage}{dot}{suffix}"

    def for_worker(self, cluster):
        """This run folder as the worker `cluster` (None: one process) writes it."""
        return self if cluster is None else RunFolder(self.path, cluster)

    def cleanup(self):
        """Removes a non-chief worker's temporary folder; the chief's folder is kept."""
        from vae_zoo.distribute import remove_write_dir

        remove_write_dir(self.root, self.path)

    # --- Choosing and checking a folder -------------------------------------------------------

    @classmethod
    def default(cls, model_name, root="runs"):
        """`runs/<model>`, or `runs/<model>-2`, -3, ... when that one holds a run already."""
        candidate, n = Path(root) / model_name, 1
        while candidate.exists() and any(candidate.iterdir()):
            n += 1
            candidate = Path(root) / f"{model_name}-{n}"
        return cls(candidate)

    @classmethod
    def latest(cls, model_name, root="runs"):
        """The newest run folder of `model_name` under `root`, for `--resume` without `--run-dir`."""
        runs = [p for p in Path(root).glob(f"{model_name}*") if (p / cls.CONFIG).is_file()]
        runs = [p for p in runs
                if p.name == model_name or p.name[len(model_name):].lstrip("-").isdigit()]
        if not runs:
            raise UserInputError(f"--resume: no run of {model_name} under {root}/; pass --run-dir")
        return cls(max(runs, key=lambda p: (p / cls.CONFIG).stat().st_mtime))

    def holds_run(self, config_dict):
        """True when the folder holds a run of exactly this config (started by the same command)."""
        if not (self.path / self.CONFIG).is_file():
            return False
        try:
            return not config_differences(self.read_config(), config_dict)
        except Exception:  # an unreadable config is not this run
            return False

    def check_new(self, config_dict):
        """Refuses a folder that holds anything, with the reason and what to do instead."""
        if self.path.exists() and not self.path.is_dir():
            raise UserInputError(f"run folder {self.path} is a file")
        if not self.path.exists() or not any(self.path.iterdir()):
            return
        if not (self.path / self.CONFIG).is_file():
            raise UserInputError(
                f"run folder {self.path} is not empty and holds no vae_zoo run; "
                "choose another --run-dir")
        differences = config_differences(self.read_config(), config_dict)
        if differences:
            raise UserInputError(
                f"run folder {self.path} holds a different run ({'; '.join(differences[:3])}); "
                "choose another --run-dir"
            )
        raise UserInputError(
            f"run folder {self.path} holds this run already; pass --resume to continue it, "
            "or choose another --run-dir"
        )

    # --- Reading (always from the real folder) ------------------------------------------------

    def read_config(self):
        path = self.path / self.CONFIG
        if not path.is_file():
            raise UserInputError(f"{self.path} holds no run ({self.CONFIG} is missing)")
        with open(path) as f:
            return load_yaml(f, source=str(path))

    def read_metrics(self):
        path = self.path / self.METRICS
        return json.loads(path.read_text()) if path.is_file() else {}

    def load_model(self):
        """The finished model (`model.keras`)."""
        import keras

        import vae_zoo  # noqa: F401  (registers the model classes with Keras)

        path = self.path / self.MODEL
        if not path.is_file():
            raise UserInputError(
                f"{self.path} holds no {self.MODEL}; pass a run folder that train.py finished")
        return keras.models.load_model(path)

    def is_finished(self):
        """True when training and the final evaluation both completed."""
        return (self.path / self.MODEL).is_file() and (self.path / self.METRICS).is_file()

    def start_from_chief(self):
        """Copies the chief's histories and best checkpoints into this worker's folder (on a
        worker other than the chief; nothing on the chief or in one process).

        A resumed run picks each stage's best epoch from its history and starts the next stage
        from its best checkpoint: a worker whose temporary folder is new would pick among the
        epochs since the resume only, and start the next stage from other weights than the
        chief's.
        """
        if self.root == self.path:
            return
        for name in (self.HISTORY, self.BEST_CHECKPOINT):
            stem, _, suffix = name.rpartition(".")
            for source in self.path.glob(f"{stem}*.{suffix}"):  # every stage's
                target = self.root / source.relative_to(self.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)

    def truncate_history(self, epochs):
        """Drops history.csv rows of epoch `epochs` and later: a resumed run writes them again."""
        if not self.history_path.is_file():
            return
        with open(self.history_path) as f:
            lines = f.read().splitlines()
        kept = lines[:1] + [line for line in lines[1:] if int(line.split(",")[0]) < epochs]
        if kept != lines:
            write_atomic(self.history_path, "\n".join(kept) + "\n")

    def best_epoch(self, monitor="val_loss", mode="min"):
        """(epoch number, `monitor` value) of the best epoch in history.csv so far, or None.

        Args:
            monitor: str. The history column that ranks epochs (a model's `selection_metric`).
            mode: str. `"min"` or `"max"`: which end of the column is best.
        """
        if not self.history_path.is_file():
            return None
        with open(self.history_path) as f:
            rows = [r for r in csv.DictReader(f) if r.get(monitor) not in (None, "", "nan")]
        if not rows:
            return None
        row = (min if mode == "min" else max)(rows, key=lambda r: float(r[monitor]))
        return int(row["epoch"]) + 1, float(row[monitor])

    # --- Writing (atomically: readers never see half a file) ----------------------------------

    def write_config(self, config_dict):
        write_atomic(self.config_path, yaml.safe_dump(config_dict, sort_keys=False))

    def write_metrics(self, metrics):
        write_atomic(self.metrics_path, json.dumps(metrics, indent=2) + "\n")

    def save_model(self, model, path=None):
        """Writes `model` to `path` (default `model.keras`) atomically."""
        path = Path(path or self.model_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        model.save(tmp)
        os.replace(tmp, path)


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
