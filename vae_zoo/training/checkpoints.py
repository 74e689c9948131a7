"""Step-level checkpoints: everything a run needs to continue as if it had never stopped.

A checkpoint holds the weights, every optimizer's state and the step counter
(`model.save_weights`), and the loop's position (epoch and batch within it). The data order and
the training noise are functions of the seed, the epoch and the step, so nothing else is needed
for an exact resume. Each checkpoint is written into a hidden folder and renamed into place, so a
kill at any moment leaves the previous checkpoints whole; the newest `keep` are kept.

Writing a checkpoint costs about as much as a few hundred small training steps, so epoch ends
save at most once per `min_seconds`: a run of many short epochs does not spend its time writing.
"""

import json
import os
import shutil
import time
from pathlib import Path

import keras

WEIGHTS = "weights.weights.h5"
STATE = "state.json"


class StepCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every `every` training steps, at epoch ends at most once per
    `min_seconds`, and at the end of training.

    Args:
        folder: str or Path. Where the checkpoints go (`step-000000123/` each).
        loop: the `TrainingLoop`, which knows the epoch and step.
        every: int or None. Save every this many steps (None: at epoch ends only).
        min_seconds: float. An epoch end saves only when the last checkpoint is at least this
            old (0: every epoch end).
        keep: int. How many checkpoints to keep.
        after_save: callables run after each save (e.g. `BestModel.flush`), so that what is on
            disk describes the same point of the run.
    """

    def __init__(self, folder, loop, every=None, min_seconds=0.0, keep=2, after_save=()):
        super().__init__()
        self.folder = Path(folder)
        self.loop = loop
        self.every = every
        self.min_seconds = min_seconds
        self.keep = keep
        self.after_save = list(after_save)
        self._last_save = time.monotonic()
        for stale in self.folder.glob(".tmp-step-*"):  # left by a process killed mid-save
            shutil.rmtree(stale, ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.every and self.loop.global_step() % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._last_save >= self.min_seconds:
            self.save()

    def on_train_end(self, logs=None):
        self.save()

    def save(self):
        step = self.loop.global_step()
        target = self.folder / f"step-{step:09d}"
        if target.exists():
            return target
        tmp = self.folder / f".tmp-step-{step:09d}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self.model.save_weights(tmp / WEIGHTS)
            state = {"epoch": self.loop.epoch, "step": self.loop.step, "global_step": step}
            (tmp / STATE).write_text(json.dumps(state) + "\n")
            os.replace(tmp, target)
        except BaseException:  # a full disk, a kill: leave no half checkpoint behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in sorted(self.folder.glob("step-*"))[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        self._last_save = time.monotonic()
        for callback in self.after_save:
            callback()
        return target


class BestModel(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best `monitor` value and writes them as a `.keras`
    file when `flush()` is called (by each step checkpoint) and at the end of training.

    Holding them in memory (a copy of the weights, milliseconds) instead of writing the file at
    every improvement keeps a run of short epochs from spending its time writing; a run resumed
    from a checkpoint finds the best model of the epochs before that checkpoint on disk.

    Args:
        save: callable `(model, path)` writing the model atomically (`RunFolder.save_model`).
        path: where the best model goes.
        monitor: str. The epoch log that ranks epochs (the model's `selection_metric`).
        mode: str. `"min"` or `"max"`: which end of `monitor` is best.
        threshold: float or None. The best `monitor` value so far (of a resumed run).
    """

    def __init__(self, save, path, monitor="val_loss", mode="min", threshold=None):
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.save, self.path = save, Path(path)
        self.monitor, self.mode = monitor, mode
        self.best = threshold
        self._pending = None  # the best weights not yet written

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and (self.best is None or is_better(value, self.best, self.mode)):
            self.best = value
            self._pending = self.model.get_weights()

    def on_train_end(self, logs=None):
        self.flush()

    def flush(self):
        if self._pending is None:
            return
        current = self.model.get_weights()
        self.model.set_weights(self._pending)
        try:
            self.save(self.model, self.path)
        finally:
            self.model.set_weights(current)
        self._pending = None


def is_better(value, best, mode):
    """True when `value` beats `best` in `mode` (`"min"` or `"max"`); NaN never does."""
    return value < best if mode == "min" else value > best


def latest_checkpoint(folder):
    """`(path, state)` of the newest complete checkpoint in `folder`, or None."""
    for path in sorted(Path(folder).glob("step-*"), reverse=True):
        try:
            state = json.loads((path / STATE).read_text())
        except (OSError, ValueError):
            continue  # not a complete checkpoint
        if (path / WEIGHTS).is_file():
            return path, state
    return None


def restore(model, path):
    """Loads a checkpoint's weights, every optimizer's state and the step counter into `model`."""
    model.build_optimizers()
    model.load_weights(Path(path) / WEIGHTS)
