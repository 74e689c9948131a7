"""Train one model from a `RunConfig` into a run folder."""

import contextlib
import hashlib
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.data import images_of
from vae_zoo.data import load_data
from vae_zoo.data import make_batches
from vae_zoo.distribute import current_cluster
from vae_zoo.distribute.compression import compress_all_reduce
from vae_zoo.distribute import strategy_for
from vae_zoo.distribute import wants_multi_worker
from vae_zoo.errors import UserInputError
from vae_zoo.evaluation import EvalSettings
from vae_zoo.evaluation.report import evaluate_and_report
from vae_zoo.evaluation.report import write_hparams
from vae_zoo.run_folder import RunFolder
from vae_zoo.training.background import BackgroundWriter
from vae_zoo.training.callbacks import GracefulInterrupt
from vae_zoo.training.callbacks import ImageSummaries
from vae_zoo.training.callbacks import ScheduleLogger
from vae_zoo.training.callbacks import StopRequested
from vae_zoo.training.callbacks import TensorBoard
from vae_zoo.training.checkpoints import BestModel
from vae_zoo.training.checkpoints import StepCheckpoint
from vae_zoo.training.checkpoints import latest_checkpoint
from vae_zoo.training.checkpoints import restore
from vae_zoo.training.loop import Profile
from vae_zoo.training.loop import TraceWindow
from vae_zoo.training.loop import TrainingLoop
from vae_zoo.training.precision import keep_recorded_precision
from vae_zoo.training.precision import resolve_precision
from vae_zoo.training.strategy import resolve_jit_compile


class TrainingInterrupted(Exception):
    """Ctrl-C or SIGTERM during training; a checkpoint that the run continues from was saved."""

    def __init__(self, run_dir, epoch, step, signum):
        super().__init__(f"interrupted at epoch {epoch + 1}, batch {step}")
        self.run_dir = Path(run_dir)
        self.epoch, self.step, self.signum = epoch, step, signum


# Runs beside a worker that is creating its multi-worker strategy: TensorFlow waits for every peer
# forever and holds the Python interpreter meanwhile (a watchdog thread never runs: measured), so
# only another process can end the wait. It kills the worker unless told "ready" in time.
_WATCHDOG = """
import os, select, signal, sys
parent, seconds = int(sys.argv[1]), float(sys.argv[2])
ready, _, _ = select.select([sys.stdin], [], [], seconds)
if not ready or not sys.stdin.readline():
    try:
        os.kill(parent, 0)
    except OSError:
        sys.exit(0)
    print(f"error: the other workers named by TF_CONFIG/Slurm did not all answer within "
          f"{seconds:g} s (train.cluster_timeout): check their addresses and that every worker "
          f"was started; exit code {128 + signal.SIGKILL}", file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def cluster_watchdog(seconds):
    """Kills this process with one line on stderr if the block takes more than `seconds`."""
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds)],
                                stdin=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        try:
            watchdog.communicate("ready\n", timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            watchdog.kill()


def prepare(config, log=print):
    """Loads the data and builds and compiles the model (from a preset's weights when
    `train.from_preset` names one): everything that can fail on bad input.

    Nothing is written to disk here, so a config that cannot work leaves no half-made run behind.
    Returns `(config, data, model, strategy)`: the config with its schedule lengths in steps
    (`RunConfig.with_schedule_lengths`, a warning logged for each that cannot finish), which the
    model is built from. `train()` passes a config whose `train.precision` is resolved already;
    other callers may leave it `auto`.
    """
    # First: a multi-worker strategy must exist before any other TensorFlow op runs.
    name = config.train.strategy
    several = name == "multi_worker" or (name == "auto" and wants_multi_worker())
    with cluster_watchdog(config.train.cluster_timeout) if several else contextlib.nullcontext():
        strategy = strategy_for(name)
    keras.utils.set_random_seed(config.train.seed)
    if config.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    data = load_data(config.data, seed=config.train.seed)
    config, warnings = config.with_schedule_lengths(stage_steps(config, data))
    for warning in warnings:
        log(warning)
    with strategy.scope():
        model = config.model.build(data.spec,
                                   precision=resolve_precision(config.train.precision)[0])
        model.seed = config.train.seed
        compile_model(model, config.train.learning_rate, config.train.all_reduce_dtype)
        if config.train.from_preset:
            from vae_zoo.presets import resolve_preset

            resolve_preset(config.train.from_preset).load_weights_into(model, data.image_shape)
    return config, data, model, strategy


def stage_steps(config, data):
    """The training steps of each stage of the run (the first stage's `epochs`, then the
    second's `prior_epochs`), which fractions of the run are fractions of."""
    epochs = (config.train.epochs, config.train.prior_epochs)
    stages = config.model.model_class().capabilities.stages
    return [n * steps_per_epoch(config, data) for n in epochs[:stages]]


def steps_per_epoch(config, data):
    return math.ceil(data.sizes["train"] / config.data.batch_size)


def train(config, run_dir, resume=False, verbose=None, log=print):
    """Trains `config` into `run_dir` and returns the metrics written to `metrics.json`.

    With `resume`, continues from the run folder's newest checkpoint, at the step it was taken.
    Under multi-worker training every worker runs this; only the chief writes the run folder (the
    others write the same files to a temporary folder they remove), evaluates, and returns metrics.

    `train.precision: auto` and schedule lengths given as fractions of the run are resolved
    here, once, and the run folder's config.yaml records the result; resuming (and every worker
    of a resumed run, which reads the chief's config.yaml) keeps what the run started with.
    """
    run = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
    if resume:
        config = keep_recorded_precision(config, run)
    precision, reason = resolve_precision(config.train.precision)
    log(f"precision: {precision} ({reason})")
    config = config.with_precision(precision)
    config, data, model, strategy = prepare(config, log)
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    cluster = current_cluster() if multi_worker else None
    run = run.for_worker(cluster)
    try:
        return _train(config, run, data, model, strategy, resume, verbose, log, multi_worker,
                      reason)
    finally:
        run.cleanup()


def weights_fingerprint(model):
    """A short hash of the model's weights: equal on every worker, and across equal runs."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()[:16]


def _train(config, run, data, model, strategy, resume, verbose, log, multi_worker,
           precision_reason):
    log(f"data: {data.source}: {data.sizes['train']} train, {data.sizes['validation']} "
        f"validation, {data.sizes['test']} test images of shape {data.image_shape}")
    for note in data.notes:
        log(f"data: {note}")
    seed = config.train.seed

    def train_batches(epoch, start_step=0, shard=None, epochs=1):
        return make_batches(data, "train", config.data, seed=seed, epoch=epoch,
                            start_step=start_step, shard=shard, epochs=epochs)

    batches = {split: make_batches(data, split, config.data, seed=seed)
               for split in ("validation", "test")}
    epoch_steps = steps_per_epoch(config, data)
    preview = images_of(batches["validation"], 16)

    jit_compile = resolve_jit_compile(config.train.jit_compile)
    ends = stage_ends(model, config.train)
    criteria = [model.selection_metric(stage) for stage in range(len(ends))]
    initial_epoch = initial_step = 0
    run.create()
    if resume:
        run.start_from_chief()
        found = latest_checkpoint(run.path / run.CHECKPOINTS)  # every worker reads the chief's
        if found is not None:
            path, state = found
            try:
                with strategy.scope():  # the optimizer's slots are created here
                    restore(model, path)
            except ValueError as e:  # weights of another model or image shape
                raise UserInputError(f"{path} does not fit this model: {e}") from None
            initial_epoch, initial_step = state["epoch"], state["step"]
            log(f"resuming from {path.name}: epoch {initial_epoch + 1}, batch {initial_step}")
        for stage in range(len(ends)):
            stage_folder(run, model, stage).truncate_history(initial_epoch)
    else:
        run.write_config(config.to_dict())
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if not run.is_chief:
        verbose = 0

    start = time.perf_counter()
    epochs_run, profile, traces = 0, Profile(), {}  # one profile for every stage's loop
    trace = trace_window(config.train, run, current_cluster() if multi_worker else None)
    for stage, end in enumerate(ends):
        first = ends[stage - 1] if stage else 0
        if initial_epoch >= end:
            continue  # a resumed run: this stage is done, the checkpoint holds its weights
        with profile.clock("setup"):
            if len(ends) > 1:
                model.begin_stage(stage)
                log(f"stage {stage + 1} of {len(ends)}: {model.stage_names[stage]}, epochs "
                    f"{first + 1} to {end}")
            monitor, mode = criteria[stage]
            log(f"best epoch chosen by {monitor} ({'highest' if mode == 'max' else 'lowest'})")
            if stage and (initial_epoch, initial_step) == (first, 0):  # starts now, not resumed
                start_stage(model, stage_folder(run, model, stage - 1), strategy,
                            config.train.learning_rate, config.train.all_reduce_dtype)
            loop = TrainingLoop(model, strategy, jit_compile=jit_compile, profile=profile,
                                trace=trace)
        epochs_run += _fit_stage(config, stage_folder(run, model, stage), loop, train_batches,
                                 epoch_steps, batches["validation"], preview, end, verbose,
                                 max(initial_epoch, first), initial_step, resume,
                                 criteria[stage])
        prefix = f"{model.stage_names[stage]}/" if stage else ""
        traces.update({prefix + kind: count for kind, count in loop.traces().items()})
        initial_epoch, initial_step = end, 0
    seconds = time.perf_counter() - start

    run = stage_folder(run, model, len(ends) - 1)  # the last stage's best weights are the model
    best = run.best_epoch(*criteria[-1])
    if run.best_checkpoint.is_file():
        model.load_weights(run.best_checkpoint)
    if len(ends) > 1:
        model.begin_stage(0)  # evaluation reports the first stage's terms, as a loaded model does
    run.save_model(model)  # every worker: saving a distributed model takes all of them
    log(f"final weights: {weights_fingerprint(model)} (sha256 of the trained weights, "
        f"best epoch's weights after loading)")
    if not run.is_chief:
        return None
    if multi_worker:
        # Evaluate what was saved, as one process: the distributed model's functions would
        # wait for the other workers, which are done.
        model = run.load_model()

    iw_note = (f" (importance-weighted NLL with k={config.eval.iw_samples})"
               if model.capabilities.has_density else "")
    log(f"evaluating on {data.sizes['test']} test images{iw_note}")
    settings = EvalSettings(iw_samples=config.eval.iw_samples, iw_examples=config.eval.iw_examples,
                            progress=verbose == 1, num_examples=data.sizes.get("test"),
                            dataset=config.data.dataset,
                            quality_images=config.eval.quality_images)
    test, drawn = evaluate_and_report(model, batches["test"], run, step=ends[-1],
                                      settings=settings, draw=config.eval.pictures)
    write_hparams(run, config.to_dict())
    metrics = {
        "model": config.model.name,
        "dataset": data.source,
        "sizes": data.sizes,
        "image_shape": list(data.image_shape),
        "epochs": config.train.epochs,
        "precision": {"value": config.train.precision, "reason": precision_reason},
        "best_epoch": best[0] if best else None,
        "best_epoch_chosen_by": chosen_by(criteria[-1], best),
        "train_seconds": round(seconds, 2),
        "train_images_per_second": round(epochs_run * data.sizes["train"] / seconds, 1)
        if epochs_run else None,
        # Where the training seconds went (every stage): inside the steps, their first calls
        # (tracing), building data pipelines and waiting for data, in each callback
        # (checkpoints, logs, images), setting up each stage; `other` is what none of these
        # accounts for; and how often each step function was traced.
        **({"timing": {**profile.as_dict(total=seconds), "traces": traces}} if traces else {}),
        **({"stages": stage_summary(run, model, ends, criteria)} if len(ends) > 1 else {}),
        "test": test,
        "units": "nats per example (bits_per_dim: bits per pixel and channel)",
        "pictures": drawn,
    }
    run.write_metrics(metrics)
    return metrics


def trace_window(train_config, run, cluster):
    """The `TraceWindow` of `train.profile_steps` for this worker (None when off).

    Every worker writes its own `worker<rank>` subfolder of `train.profile_dir` or of the real
    run folder's `profile/`, never of its temporary folder, which `cleanup()` deletes: so the
    chief's run folder (on a shared filesystem) or the given path receives every worker's trace.
    """
    if train_config.profile_steps is None:
        return None
    folder = Path(train_config.profile_dir or run.path / run.PROFILE)
    return TraceWindow(folder / f"worker{cluster.rank if cluster else 0}",
                       *train_config.profile_steps)


def stage_ends(model, train_config):
    """The epoch at which each training stage ends: `epochs`, then `+ prior_epochs`.

    Epochs are numbered through the stages, so a checkpoint's epoch says which stage it is in.
    """
    ends = [train_config.epochs, train_config.epochs + train_config.prior_epochs]
    return ends[: model.capabilities.stages]


def stage_folder(run, model, stage):
    """The run folder as stage `stage` writes it (the first stage: the run folder itself)."""
    return run.for_stage(model.stage_names[stage] if stage else None)


def compile_model(model, learning_rate, all_reduce_dtype):
    """Compiles `model` with its optimizers, each summing gradients across replicas in
    `all_reduce_dtype` (`train.all_reduce_dtype`)."""
    model.compile(**model.make_optimizers(learning_rate))
    for name in model.optimizer_variables():
        compress_all_reduce(getattr(model, name), all_reduce_dtype)


def start_stage(model, previous, strategy, learning_rate, all_reduce_dtype):
    """Starts a stage after the first: from the previous stage's best weights (the step counter
    goes on: checkpoints are numbered by it), with a fresh optimizer over all trainable weights."""
    steps = model.steps_trained.numpy()
    if previous.best_checkpoint.is_file():
        model.load_weights(previous.best_checkpoint)
    model.steps_trained.assign(steps)
    with strategy.scope():
        compile_model(model, learning_rate, all_reduce_dtype)
        model.optimizer.build(model.trainable_variables)


def stage_summary(run, model, ends, criteria):
    """`{stage name: {epochs, best_epoch, best_epoch_chosen_by}}` for metrics.json."""
    summary = {}
    for stage, end in enumerate(ends):
        best = stage_folder(run, model, stage).best_epoch(*criteria[stage])
        summary[model.stage_names[stage]] = {
            "epochs": end - (ends[stage - 1] if stage else 0),
            "best_epoch": best[0] if best else None,
            "best_epoch_chosen_by": chosen_by(criteria[stage], best)}
    return summary


def chosen_by(criterion, best):
    """metrics.json's record of what chose the best epoch: the model's `selection_metric` and
    the best epoch's value of it."""
    monitor, mode = criterion
    return {"metric": monitor, "mode": mode, "value": best[1] if best else None}


def _fit_stage(config, run, loop, train_batches, steps_per_epoch, validation, preview, end,
               verbose, initial_epoch, initial_step, resume, criterion):
    """Trains one stage to epoch `end` with its own history, best checkpoint and TensorBoard
    runs; returns the epochs run. An interrupt saves a step checkpoint and raises
    `TrainingInterrupted`. Image summaries are encoded and written on a background thread,
    which is waited for before this returns or raises."""
    with BackgroundWriter() as writer:
        with loop.profile.clock("setup"):
            callbacks, interrupt, checkpoint = _stage_callbacks(config, run, loop, preview,
                                                                writer, resume, criterion)
        try:
            history = loop.fit(train_batches, end, steps_per_epoch, validation_data=validation,
                               callbacks=callbacks, verbose=verbose, initial_epoch=initial_epoch,
                               initial_step=initial_step)
        except (StopRequested, KeyboardInterrupt) as e:
            try:
                checkpoint.save()  # every worker, of the same step (see GracefulInterrupt)
                if isinstance(e, StopRequested):  # not after a second Ctrl-C: that one quits
                    loop.wait_for_every_worker()
            finally:
                # Only now: a SIGTERM passed on by a launcher or a scheduler while saving must
                # not kill the save.
                interrupt.restore()
            raise TrainingInterrupted(run.path, loop.epoch, loop.step,
                                      getattr(e, "signum", signal.SIGINT)) from None
        with loop.profile.clock("background_writes"):  # the writes still under way at the end
            writer.close()
    return len(history.epoch)


def _stage_callbacks(config, run, loop, preview, writer, resume, criterion):
    best_so_far = run.best_epoch(*criterion)
    tensorboard_dir = str(run.stage_tensorboard_dir)
    best_model = BestModel(run.save_model, run.best_checkpoint, *criterion,
                           threshold=best_so_far[1] if best_so_far else None)
    checkpoint = StepCheckpoint(run.checkpoints_dir, loop, every=config.train.checkpoint_every,
                                min_seconds=config.train.checkpoint_seconds,
                                after_save=[best_model.flush])
    interrupt = GracefulInterrupt(loop)
    image_every = config.train.image_every or max(1, math.ceil(config.train.epochs / 10))
    callbacks = [
        interrupt,  # first, so that an interrupted epoch's end is not recorded as complete
        ScheduleLogger(),
        best_model,  # before the checkpoint, which writes the best model it holds
        checkpoint,  # before the loggers: a kill between them repeats a row, never loses one
        keras.callbacks.CSVLogger(str(run.history_path), append=resume),
        TensorBoard(tensorboard_dir, writer=writer, write_graph=False, profile_batch=0),
        ImageSummaries(tensorboard_dir, preview, every=image_every, seed=config.train.seed,
                       writer=writer),
    ]
    return callbacks, interrupt, checkpoint
