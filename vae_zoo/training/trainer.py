"""Train one model from a `RunConfig` into a run folder."""

import csv
import os
import sys
import time
from pathlib import Path

import keras

from vae_zoo.data import load_image_data
from vae_zoo.data import make_pipeline
from vae_zoo.errors import UserInputError
from vae_zoo.evaluation.report import evaluate_and_report
from vae_zoo.training import run_dir as run_files
from vae_zoo.training.callbacks import GracefulInterrupt
from vae_zoo.training.callbacks import ImageSummaries
from vae_zoo.training.callbacks import InterruptibleBackup
from vae_zoo.training.callbacks import ScheduleLogger
from vae_zoo.training.callbacks import StopRequested
from vae_zoo.training.strategy import resolve_jit_compile
from vae_zoo.training.strategy import resolve_strategy

HISTORY_FILE = "history.csv"


class TrainingInterrupted(Exception):
    """Ctrl-C during training; a checkpoint that `--resume` continues from has been saved."""

    def __init__(self, run_dir, epochs_done):
        super().__init__(f"interrupted after {epochs_done} complete epoch(s)")
        self.run_dir = Path(run_dir)
        self.epochs_done = epochs_done


def prepare(config):
    """Loads the data and builds and compiles the model: everything that can fail on bad input.

    Nothing is written to disk here, so a config that cannot work leaves no half-made run behind.
    """
    keras.utils.set_random_seed(config.train.seed)
    data = load_image_data(config.data, seed=config.train.seed)
    strategy = resolve_strategy(config.train.strategy)
    with strategy.scope():
        model = config.model.build(data.image_shape, precision=config.train.precision)
        model.compile(
            optimizer=keras.optimizers.Adam(config.train.learning_rate),
            jit_compile=resolve_jit_compile(config.train.jit_compile),
        )
    return data, model


def train(config, run_dir, resume=False, verbose=None, log=print):
    """Trains `config` into `run_dir` and returns the metrics written to `metrics.json`.

    With `resume`, continues from the run folder's last checkpoint instead of starting afresh.
    """
    run_dir = Path(run_dir)
    data, model = prepare(config)
    log(f"data: {data.source}: {data.sizes['train']} train, {data.sizes['validation']} "
        f"validation, {data.sizes['test']} test images of shape {data.image_shape}")

    batches = {
        split: make_pipeline(
            getattr(data, split), config.data.batch_size, training=split == "train",
            seed=config.train.seed, binarize=config.data.binarize,
            image_size=config.data.image_size, shuffle_buffer=config.data.shuffle_buffer,
        )
        for split in ("train", "validation", "test")
    }
    preview = next(iter(batches["validation"].unbatch().batch(16)))

    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        run_files.write_config(run_dir, config.to_dict())
    history_path = run_dir / HISTORY_FILE
    best_so_far = _best_epoch(history_path)
    tensorboard_dir = str(run_dir / run_files.TENSORBOARD_DIR)
    backup = InterruptibleBackup(str(run_dir / run_files.BACKUP_DIR), delete_checkpoint=False)
    interrupt = GracefulInterrupt()
    callbacks = [
        interrupt,  # first, so that an interrupted epoch's end is not recorded as complete
        backup,
        ScheduleLogger(),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / run_files.BEST_CHECKPOINT), monitor="val_loss", save_best_only=True,
            initial_value_threshold=best_so_far[1] if best_so_far else None,
        ),
        keras.callbacks.CSVLogger(str(history_path), append=resume),
        keras.callbacks.TensorBoard(tensorboard_dir, write_graph=False, profile_batch=0),
        ImageSummaries(tensorboard_dir, preview, every=config.train.image_every,
                       seed=config.train.seed),
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2

    start = time.perf_counter()
    try:
        history = model.fit(
            batches["train"], validation_data=batches["validation"], epochs=config.train.epochs,
            callbacks=callbacks, verbose=verbose, shuffle=False,  # the pipeline shuffles
        )
    except (StopRequested, KeyboardInterrupt):
        interrupt.restore()
        backup.save_now()
        raise TrainingInterrupted(run_dir, backup.epochs_done) from None
    except ValueError as e:
        if "shape" in str(e) and resume:  # weights of another image shape in the checkpoint
            raise UserInputError(f"--resume: the checkpoint does not fit these images: {e}") from None
        raise
    seconds = time.perf_counter() - start
    epochs_run = len(history.epoch)

    best = _best_epoch(history_path)
    best_path = run_dir / run_files.BEST_CHECKPOINT
    if best_path.is_file():
        model.load_weights(best_path)
    _save_model_atomic(model, run_dir / run_files.MODEL_FILE)

    log(f"evaluating on {data.sizes['test']} test images "
        f"(importance-weighted NLL with k={config.eval.iw_samples})")
    test, drawn = evaluate_and_report(
        model, data, batches["test"], run_dir, tensorboard_dir, step=config.train.epochs,
        num_samples=config.eval.iw_samples, max_examples=config.eval.iw_examples,
        draw=config.eval.pictures, progress=verbose == 1)
    metrics = {
        "model": config.model.name,
        "dataset": data.source,
        "sizes": data.sizes,
        "image_shape": list(data.image_shape),
        "epochs": config.train.epochs,
        "best_epoch": best[0] if best else None,
        "best_val_loss": best[1] if best else None,
        "train_seconds": round(seconds, 2),
        "train_images_per_second": round(epochs_run * data.sizes["train"] / seconds, 1)
        if epochs_run else None,
        "test": test,
        "units": "nats per example (bits_per_dim: bits per pixel and channel)",
        "pictures": drawn,
    }
    run_files.write_metrics(run_dir, metrics)
    return metrics


def _best_epoch(history_path):
    """(epoch number, validation loss) of the best epoch logged so far, or None."""
    if not history_path.is_file():
        return None
    with open(history_path) as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_loss") not in (None, "", "nan")]
    if not rows:
        return None
    row = min(rows, key=lambda r: float(r["val_loss"]))
    return int(row["epoch"]) + 1, float(row["val_loss"])


def _save_model_atomic(model, path):
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)
