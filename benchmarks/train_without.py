"""`python train.py` with parts of the training run switched off, for time_to_result.py's
breakdown: each part's cost is the difference between a full run and a run without it.

    python benchmarks/train_without.py images checkpoints -- --model dense_vae --epochs 10

Parts: `images` (TensorBoard image summaries), `checkpoints` (step checkpoints; the best model is
still written once, at the end), `tensorboard` (the scalar curves), `validation` (no validation
pass: there is then no best epoch, and the final weights are the model). What is switched off is
replaced by a callback that does nothing, so the rest of the run is unchanged. A benchmark tool:
the runs it makes are not complete run folders.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PARTS = ("images", "checkpoints", "tensorboard", "validation")


def switch_off(parts):
    import keras

    from vae_zoo import run_folder
    from vae_zoo.training import loop
    from vae_zoo.training import trainer

    class Off(keras.callbacks.Callback):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def save(self):  # the trainer saves a step checkpoint on Ctrl-C
            return None

    if "images" in parts:
        trainer.ImageSummaries = Off
    if "checkpoints" in parts:
        trainer.StepCheckpoint = type("NoStepCheckpoint", (Off,), {})
    if "tensorboard" in parts:
        trainer.TensorBoard = type("NoTensorBoard", (Off,), {})
    if "validation" in parts:
        fit = loop.TrainingLoop.fit

        def fit_without_validation(self, *args, validation_data=None, **kwargs):
            return fit(self, *args, validation_data=None, **kwargs)

        loop.TrainingLoop.fit = fit_without_validation
        run_folder.RunFolder.best_epoch = lambda self, *criterion: None  # nothing to rank by


def main(argv):
    if "--" not in argv:
        sys.exit(f"usage: train_without.py [{' '.join(PARTS)}] -- TRAIN.PY ARGUMENTS")
    split = argv.index("--")
    parts, train_args = argv[:split], argv[split + 1:]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        sys.exit(f"unknown parts {unknown}: choose from {', '.join(PARTS)}")
    switch_off(set(parts))
    from vae_zoo.commands.train import main as train_main

    return train_main(train_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
