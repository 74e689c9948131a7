"""Step-level checkpoints: everything a run needs to continue as if it had never stopped.

A checkpoint holds the weights, every optimizer's state and the step counter
(`model.save_weights`), and the loop's position (epoch and batch within it). The data order and
the training noise are functions of the seed, the epoch and the step, so nothing else is needed
for an exact resume. Each checkpoint is written into a hidden folder and renamed into place, so a
kill at any moment leaves the previous checkpoints whole; the newest `keep` are kept.
"""

import json
import os
import shutil
from pathlib import Path

import keras

WEIGHTS = "weights.weights.h5"
STATE = "state.json"


class StepCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every `every` training steps and at the end of every epoch.

    Args:
        folder: str or Path. Where the checkpoints go (`step-000000123/` each).
        loop: the `TrainingLoop`, which knows the epoch and step.
        every: int or None. Save every this many steps (None: at epoch ends only).
        keep: int. How many checkpoints to keep.
    """

    def __init__(self, folder, loop, every=None, keep=2):
        super().__init__()
        self.folder = Path(folder)
        self.loop = loop
        self.every = every
        self.keep = keep
        for stale in self.folder.glob(".tmp-step-*"):  # left by a process killed mid-save
            shutil.rmtree(stale, ignore_errors=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.every and self.loop.global_step() % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
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
        return target


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
