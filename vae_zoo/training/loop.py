"""One training loop for every tf.distribute strategy, MultiWorkerMirroredStrategy included.

Keras 3's `fit` breaks under MultiWorkerMirroredStrategy (keras-team/keras#20585: it reduces
nested logs and scalars in ways MWMS refuses). This loop keeps `fit`'s user-visible behaviour
(Keras callbacks and their hooks, the progress bar, `History`, `val_` logs, `stop_training`) and
runs the model's own `train_step`/`test_step` under `strategy.run`, so any model, including one
with a second optimizer, trains the same way on one device, several, or several machines.

It also knows where it is: epoch, step within the epoch, and the dataset of each epoch is rebuilt
from `(seed, epoch)` and skipped forward on resume, so a run restarted from a step checkpoint sees
exactly the batches it would have seen.

It measures itself (`profile`): seconds inside the training and validation steps, the first call
of each step function (tracing), building each epoch's data pipeline (the first one prepares the
examples), waiting for data (making, iterating and deleting each epoch's iterator), and in each
callback, and how often each step function was traced, so that the cost of
everything around the steps is known (benchmarks/time_to_result.py, `timing` in metrics.json).

It can trace a window of steps with TensorFlow's profiler (`TraceWindow`, the config's
`train.profile_steps`), on every worker, each step marked with its global step number.

And it stops together: `request_stop` (Ctrl-C or SIGTERM, from `callbacks.GracefulInterrupt`)
takes effect after the same step on every worker of a multi-worker run, so that all of them save
a checkpoint of that step (see `TrainingLoop.request_stop`).
"""

import atexit
import collections
import contextlib
import gc
import math
import signal
import threading
import time

import keras
import numpy as np
import tensorflow as tf


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; nothing was saved after the last good step."""

    def __init__(self, epoch, step, global_step, logs):
        super().__init__(f"the loss is {logs.get('loss')} at step {global_step} (epoch {epoch + 1}, "
                         f"batch {step + 1})")
        self.epoch, self.step, self.global_step = epoch, step, global_step


# Why a run may be stopped before its end (`request_stop`), weakest first: workers asked to stop
# for different reasons all stop for the strongest, so that a preempted job ends as preempted.
STOP_REASONS = (signal.SIGINT, signal.SIGTERM)

# Across machines, the steps whose loss and stop votes are all-reduced: every SYNC_EVERY-th step
# of an epoch and its last. That small all-reduce is a collective of its own, ordered after the
# gradients', and cost about 5 ms of a 75 ms 2-worker conv_vae step (measured with and without
# it: 68.8-71.7 against 75.2-76.4 ms); once per 8 steps it costs 0.6 ms. A stop then takes
# effect up to 7 steps later, on every worker at the same step.
SYNC_EVERY = 8


class WorkerSteps:
    """A step function under MultiWorkerMirroredStrategy, in two compiled forms: `synced` also
    all-reduces the loss and every worker's stop votes; `local` returns this worker's own loss."""

    def __init__(self, synced, local):
        self.synced, self.local = synced, local

    def experimental_get_tracing_count(self):
        return max(self.synced.experimental_get_tracing_count(),
                   self.local.experimental_get_tracing_count())


class TrainingLoop:
    """`fit` for any strategy, resumable at any step.

    Args:
        model: a compiled `ZooModel`, built under `strategy.scope()`.
        strategy: the `tf.distribute.Strategy` the model was built under.
        jit_compile: bool. Compile the step functions with XLA.
        profile: a `Profile` to add this loop's seconds to (default: a new one).
        trace: a `TraceWindow` of global steps to trace with TensorFlow's profiler, or None.
    """

    def __init__(self, model, strategy, jit_compile=False, profile=None, trace=None):
        self.model = model
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.trace = trace or TraceWindow(None, 0, -1)  # an empty window: never traces
        self.epoch = 0  # the epoch being trained (or next to train)
        self.step = 0  # batches of `epoch` already trained
        self.profile = profile or Profile()
        self._functions = {}
        self._called = set()  # the step functions called (and so traced) already
        self._global_step = None  # `steps_trained` as the last step returned it, while fitting
        self._several_workers = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self._requested = frozenset()  # the STOP_REASONS asked for in this process
        self._vote_tensors = {}  # `_requested` -> its votes as a tensor, made once each
        self._agreed = frozenset()  # the STOP_REASONS of every worker, as of the last step
        with strategy.scope():
            model.build_optimizers()  # here, not inside the first step: one trace, not two

    def _function(self, kind, dataset):
        """The compiled train or test step, traced once for every batch of `dataset`.

        The input signature is the distributed dataset's (batch dimension None), so the last,
        smaller batch of an epoch or of the validation set does not trace the step again.
        """
        if kind not in self._functions:
            step_fn = self.model.train_step if kind == "train" else self.model.test_step
            self._functions[kind] = self._make_function(step_fn, dataset.element_spec)
        return self._functions[kind]

    def traces(self):
        """How many times each step function was traced (1 each when nothing retraced)."""
        return {kind: int(f.experimental_get_tracing_count())
                for kind, f in self._functions.items()}

    def _make_function(self, step_fn, element_spec):
        strategy, model = self.strategy, self.model

        def one_step(batch):
            strategy.run(step_fn, args=(batch,))
            # The step counter comes back with the logs: reading the variable from Python after
            # every step (for the checkpoint cadence) costs more than the step of a small model.
            # Keras metric variables sum their replicas on read: the global values.
            return model.get_metrics_result(), tf.convert_to_tensor(model.steps_trained)

        if not self._several_workers:
            return tf.function(one_step, jit_compile=self.jit_compile,
                               input_signature=[element_spec])

        def replica_step(batch, votes):
            loss = step_fn(batch)["loss"]
            return tf.concat([[tf.cast(loss, votes.dtype)], votes], axis=0)

        def synced_step(batch, votes):
            # Across machines every read of a metric variable is a collective: on synced steps
            # (`SYNC_EVERY`) one all-reduce of the running loss (for the NaN check and the
            # progress bar) and of each worker's stop votes (see `request_stop`); the other
            # terms are read once, at the end of the epoch.
            reduced = strategy.reduce("MEAN", strategy.run(replica_step, args=(batch, votes)),
                                      axis=None)
            return {"loss": reduced[0]}, tf.convert_to_tensor(model.steps_trained), reduced[1:]

        def local_step(batch):
            losses = strategy.run(lambda b: step_fn(b)["loss"], args=(batch,))
            loss = strategy.experimental_local_results(losses)[0]
            return {"loss": loss}, tf.convert_to_tensor(model.steps_trained)

        votes_spec = tf.TensorSpec([len(STOP_REASONS)], tf.float32)
        return WorkerSteps(
            tf.function(synced_step, jit_compile=self.jit_compile,
                        input_signature=[element_spec, votes_spec]),
            tf.function(local_step, jit_compile=self.jit_compile, input_signature=[element_spec]))

    def _run_step(self, function, batch, sync=True):
        """`(logs, steps)` of one step; under MultiWorkerMirroredStrategy, when `sync`, it also
        sends this worker's stop votes and keeps every worker's, and the loss is every worker's
        mean; otherwise the loss is this worker's own."""
        if not self._several_workers:
            return function(batch)
        if not sync:
            return function.local(batch)
        logs, steps, votes = function.synced(batch, self._votes())
        self._agreed = frozenset(r for r, vote in zip(STOP_REASONS, votes.numpy()) if vote > 0)
        return logs, steps

    def _votes(self):
        """This process's requests as the step's votes: 1.0 for each of `STOP_REASONS` asked
        for. The tensor is made once per set of requests, not per step (converting an array at
        every call cost 0.1 ms a step, measured)."""
        requested = self._requested  # a signal that comes in meanwhile goes with the next step
        if requested not in self._vote_tensors:
            self._vote_tensors[requested] = tf.constant(
                [float(reason in requested) for reason in STOP_REASONS])
        return self._vote_tensors[requested]

    def request_stop(self, reason):
        """Asks to stop training; `stop_reason` says when to (`GracefulInterrupt` raises then).

        In one process that is at once. Under MultiWorkerMirroredStrategy a signal reaches one
        worker (a preempted pod, a Ctrl-C in one terminal) and the others must stop at the same
        step, or they would wait for it in their next all-reduce until TensorFlow declares it
        lost, and save nothing. So the request is a vote sent with the next synced step's loss
        all-reduce (2 floats more in it; every `SYNC_EVERY`-th step and the epoch's last), and
        every worker reads the same result after that step: all stop there and save a
        checkpoint of the same step, with no collective of their own.

        TensorFlow's `PreemptionCheckpointHandler` was not used: it watches SIGTERM only (not
        Ctrl-C), agrees on a step through the coordination service's key-value store with two
        watcher threads per worker, wants a `tf.train.Checkpoint` and folder of its own, which
        it restores at start (a `save_fn` can replace its save, not that), and must wrap every
        step call; the zoo's step checkpoints (weights, optimizers, the loop's epoch and batch)
        already do what resuming needs.

        Safe to call from a signal handler.

        Args:
            reason: one of `STOP_REASONS` (the signal).
        """
        if reason not in STOP_REASONS:
            raise ValueError(f"a stop reason is one of {STOP_REASONS}, got {reason!r}")
        self._requested = self._requested | {reason}  # one assignment: atomic for the loop

    def wait_for_every_worker(self):
        """Returns once every worker has called it (an all-reduce of one number); at once in
        one process.

        After a stop, each worker calls it once its checkpoint is saved, so none exits before
        every checkpoint is whole: a scheduler that ends a job step when one of its tasks exits
        non-zero (`srun --kill-on-bad-exit`) would otherwise kill the chief mid-save.
        """
        if self._several_workers:
            strategy = self.strategy
            barrier = tf.function(lambda: strategy.reduce(
                "SUM", strategy.run(lambda: tf.constant(1.0)), axis=None))
            barrier().numpy()

    @property
    def stop_reason(self):
        """The strongest of `STOP_REASONS` that any worker has asked for and every worker knows
        of, or None: the same on every worker between two steps."""
        asked = self._agreed if self._several_workers else self._requested
        return max(asked, key=STOP_REASONS.index, default=None)

    def distribute(self, dataset):
        """Global batches split across the replicas (the validation and test sets)."""
        # Across machines every worker reads each batch and keeps its share (DATA sharding):
        # held-out sets are small; training batches are read by their worker alone.
        return self.strategy.experimental_distribute_dataset(_pipeline_options(
            dataset, tf.data.experimental.AutoShardPolicy.DATA))

    def distribute_run(self, train_batches, epoch, step, epochs):
        """The training batches from batch `step` of `epoch` to the end of epoch `epochs - 1`,
        distributed, as one dataset: one iterator feeds the whole run.

        Across machines each worker builds only its own part of every batch
        (`distribute_datasets_from_function`): it reads only its own examples, instead of reading
        every global batch and dropping the other workers' parts.
        """
        count = epochs - epoch
        if self._several_workers:
            # Repeated, so infinite: on a finite dataset each worker's every `next` is an
            # all-reduce of whether the workers still have data (tf.distribute's partial-batch
            # handling), 9 ms a step here (measured); the loop takes exactly its steps anyway.
            def per_worker(context):
                shard = (context.input_pipeline_id, context.num_input_pipelines,
                         context.num_replicas_in_sync)
                return _pipeline_options(train_batches(epoch, start_step=step, shard=shard,
                                                       epochs=count).repeat())

            return self.strategy.distribute_datasets_from_function(per_worker)
        return self.distribute(train_batches(epoch, start_step=step, epochs=count))

    def fit(self, train_batches, epochs, steps_per_epoch, validation_data=None, callbacks=(),
            verbose=1, initial_epoch=0, initial_step=0):
        """Trains from `(initial_epoch, initial_step)` to the end of `epochs`; returns History.

        Args:
            train_batches: callable `(epoch, start_step=0, shard=None, epochs=1) ->
                tf.data.Dataset`: the global batches of `epochs` consecutive epochs from batch
                `start_step` of `epoch` on, or with `shard` (`(pipeline_id, num_pipelines,
                num_replicas)`) one input pipeline's per-replica parts of them (see
                `vae_zoo.data.make_pipeline`).
            epochs: int. The epoch to stop after.
            steps_per_epoch: int. Batches in one epoch: the loop takes that many from
                `train_batches` per epoch.
            validation_data: a `tf.data.Dataset` of global batches, evaluated after each epoch.
            callbacks: Keras callbacks (their train, test, epoch and batch hooks all run).
            verbose: 0 (silent), 1 (progress bar) or 2 (one line per epoch).
            initial_epoch, initial_step: where a resumed run continues.
        """
        model = self.model
        clock = self.profile.clock
        start = time.perf_counter()
        with clock("setup"):
            callbacks = keras.callbacks.CallbackList(
                list(callbacks), add_history=True, add_progbar=verbose != 0, verbose=verbose,
                epochs=epochs, steps=steps_per_epoch, model=model)
            callbacks.callbacks = [TimedCallback(c, self.profile) for c in callbacks.callbacks]
        try:
            with frozen_garbage_collector():
                return self._fit(callbacks, train_batches, epochs, steps_per_epoch,
                                 validation_data, initial_epoch, initial_step)
        finally:
            self.trace.stop()  # training ended, or failed, inside the window
            self._global_step = None
            self.profile.add_total(time.perf_counter() - start)

    def _fit(self, callbacks, train_batches, epochs, steps_per_epoch, validation_data,
             initial_epoch, initial_step):
        model, clock = self.model, self.profile.clock
        model.stop_training = False
        self.epoch, self.step = initial_epoch, initial_step
        self._global_step = self.global_step()
        callbacks.on_train_begin()
        logs, epoch_logs = {}, None
        if self.epoch >= epochs:
            callbacks.on_train_end(logs=epoch_logs)
            return model.history
        with clock("data_pipeline"):
            batches = self.distribute_run(train_batches, self.epoch, self.step, epochs)
            train_function = self._function("train", batches)
            validation = (None if validation_data is None
                          else RepeatedBatches(validation_data, self.distribute))
        with clock("data"):
            iterator = iter(batches)
        self.trace.update(self._global_step)
        while self.epoch < epochs:
            epoch = self.epoch
            with clock("metrics"):
                model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            while self.step < steps_per_epoch:
                with clock("data"):
                    batch = next(iterator)
                with self.trace.step(self._global_step):
                    callbacks.on_train_batch_begin(self.step)
                    sync = self._synced(self.step, steps_per_epoch)
                    with clock(self._step_part("train", sync)):
                        logs, steps = self._run_step(train_function, batch, sync)
                        logs = {key: float(value) for key, value in logs.items()}
                        self._global_step = int(steps)
                    # Across machines only a synced loss is the same on every worker, so only it
                    # may stop them all (a NaN gradient reaches every worker's weights anyway).
                    if sync and not math.isfinite(logs.get("loss", 0.0)):
                        raise TrainingDiverged(epoch, self.step, self.global_step(), logs)
                    self.step += 1
                    callbacks.on_train_batch_end(self.step - 1, logs)
                self.trace.update(self._global_step)
                if model.stop_training:
                    break
            with clock("metrics"):
                epoch_logs = self.metrics_result()
            if validation is not None:
                val_logs = self.evaluate(validation, callbacks)
                epoch_logs.update({f"val_{key}": value for key, value in val_logs.items()})
            self.epoch, self.step = epoch + 1, 0
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        with clock("data"):
            doomed = [iterator, validation.close() if validation is not None else None]
            del iterator
            delete_later(doomed)
        callbacks.on_train_end(logs=epoch_logs)
        return model.history

    def _synced(self, step, steps):
        """Whether step `step` of `steps` all-reduces the loss and stop votes (always, in one
        process; across machines see `SYNC_EVERY`)."""
        return not self._several_workers or (step + 1) % SYNC_EVERY == 0 or step + 1 == steps

    def _step_part(self, kind, sync=True):
        """The profile's name for a call of the `kind` step function: its first call traces
        (across machines each of its two forms, synced or not, traces at its first call)."""
        form = (kind, sync)
        if form in self._called:
            return "train_steps" if kind == "train" else "validation_steps"
        self._called.add(form)
        return f"first_{kind}_step"

    def evaluate(self, batches, callbacks=None):
        """Mean of every tracked term over `batches` (a dataset, or `RepeatedBatches`, whose
        one iterator serves every evaluation of a run); runs the test hooks of `callbacks`."""
        model = self.model
        with self.profile.clock("metrics"):
            model.reset_metrics()
        if callbacks is not None:
            callbacks.on_test_begin()
        logs = {}
        clock = self.profile.clock
        with clock("data_pipeline"):
            if not isinstance(batches, RepeatedBatches):
                batches = RepeatedBatches(batches, self.distribute)
            test_function = self._function("test", batches.dataset)
        with clock("data"):
            iterator = batches.iterator()
        for step in range(batches.count):
            with clock("data"):
                batch = next(iterator)
            if callbacks is not None:
                callbacks.on_test_batch_begin(step)
            sync = self._synced(step, batches.count)
            with clock(self._step_part("test", sync)):
                logs, _ = self._run_step(test_function, batch, sync)
                logs = {key: float(value) for key, value in logs.items()}
            if callbacks is not None:
                callbacks.on_test_batch_end(step, logs)
        logs = self.metrics_result()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def metrics_result(self):
        """Every tracked term, as floats: the global values, whatever the strategy."""
        return {key: float(value) for key, value in self.model.get_metrics_result().items()}

    def global_step(self):
        """The model's `steps_trained`: as the last training step returned it while fitting."""
        if self._global_step is not None:
            return self._global_step
        return int(np.asarray(self.model.steps_trained.numpy()))


class Profile:
    """Seconds spent per part of a run (wall clock), summed over the run."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self.total = 0.0

    def add_total(self, seconds):
        """Adds the wall time of a whole `fit`; what no part accounts for is reported as `other`."""
        self.total += seconds

    def clock(self, part):
        return _Clock(self.seconds, part)

    def as_dict(self, total=None):
        """Seconds per part, and `other`: what no part accounts for in `total` (by default the
        wall time of the `fit` calls)."""
        parts = dict(sorted(self.seconds.items()))
        total = total if total is not None else self.total
        if total:
            parts["other"] = total - sum(parts.values())
        return {part: round(seconds, 4) for part, seconds in parts.items()}


class TraceWindow:
    """A TensorFlow profiler trace of global training steps `first` to `last` (both included)
    into `logdir` (`tf.profiler.experimental`; TensorBoard's profile plugin reads it).

    The trace starts as soon as the step before `first` has ended (its callbacks included), so it
    holds whole steps: fetching each batch, the callbacks, the step, and whatever else the loop
    does in between (an epoch's end, when one falls inside). Each step is marked as a
    `train` step with its global step number (`step_num`), which the profile plugin's step-time
    view and `benchmarks/multi_worker.py --profile` read. Outside the window the loop runs as
    without it.

    Args:
        logdir: str or Path. Where the trace goes (`plugins/profile/<time>/<host>.xplane.pb`).
        first, last: int. The global steps (`steps_trained` before the step) to trace.
    """

    def __init__(self, logdir, first, last):
        self.logdir, self.first, self.last = logdir, first, last
        self.active = False

    def update(self, steps_trained):
        """Starts or stops the trace for the step that runs next (`steps_trained` so far)."""
        if not self.active and self.first <= steps_trained <= self.last:
            tf.profiler.experimental.start(str(self.logdir))
            self.active = True
        elif self.active and steps_trained > self.last:
            self.stop()

    def step(self, global_step):
        """A context that marks one step in the trace (nothing when not tracing)."""
        if not self.active:
            return contextlib.nullcontext()
        return tf.profiler.experimental.Trace("train", step_num=global_step, _r=1)

    def stop(self):
        """Ends the trace and writes it out; nothing when not tracing."""
        if self.active:
            self.active = False
            tf.profiler.experimental.stop()


class RepeatedBatches:
    """A finite dataset distributed once and read through one iterator, `count` batches per
    pass: a held-out set evaluated after every epoch costs one iterator per run, not one per
    epoch (under MultiWorkerMirroredStrategy, making one is a round of collectives and deleting
    one waits for its threads).

    Args:
        dataset: a `tf.data.Dataset` of global batches with a known, finite number of batches
            (the zoo's pipelines have one), or one that can be counted.
        distribute: callable `dataset -> distributed dataset` (`TrainingLoop.distribute`).
    """

    def __init__(self, dataset, distribute):
        count = int(dataset.cardinality())
        if count == tf.data.INFINITE_CARDINALITY:
            raise ValueError("a held-out dataset must be finite: it is read whole each time")
        if count < 0:  # unknown: counted once
            count = int(dataset.reduce(np.int64(0), lambda n, _: n + 1))
        self.count = count
        self.dataset = distribute(dataset.repeat())
        self._iterator = None

    def iterator(self):
        """The one iterator, at the start of a pass when the last pass was read whole."""
        if self._iterator is None:
            self._iterator = iter(self.dataset)
        return self._iterator

    def close(self):
        """Lets go of the iterator and returns it (or None), for `delete_later`."""
        iterator, self._iterator = self._iterator, None
        return iterator


_DELETING = []  # the threads of `delete_later`


def delete_later(iterators):
    """Deletes the iterators in the list `iterators` on another thread (it empties the list):
    the caller must hold no other reference to them.

    Under MultiWorkerMirroredStrategy deleting an input iterator waits for its threads, 0 to
    3.6 s (measured, 2 workers; 0 CPU-seconds), and nothing after training needs it gone: the
    model is saved and evaluated meanwhile. The threads are joined before the interpreter exits.
    """
    thread = threading.Thread(target=iterators.clear, name="vae_zoo-iterator-delete",
                              daemon=True)
    if not _DELETING:
        atexit.register(_join_deleting)
    _DELETING.append(thread)
    thread.start()


def _join_deleting():
    while _DELETING:
        _DELETING.pop().join()


@contextlib.contextmanager
def frozen_garbage_collector():
    """Keeps the objects that exist now out of Python's full garbage collections until the block
    ends (`gc.freeze`): TensorFlow and Keras hold millions of objects that a full collection
    walks, 0.4-0.6 s each time one happens mid-training (measured). Garbage made meanwhile is
    collected as usual; the frozen objects rejoin the collector afterwards. A process that froze
    objects itself is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _pipeline_options(dataset, shard_policy=None):
    """`dataset` with the options every input pipeline of the loop runs with."""
    options = tf.data.Options()
    if shard_policy is not None:
        options.experimental_distribute.auto_shard_policy = shard_policy
    # A new iterator feeds every epoch, and the validation set's every epoch too, so what
    # tf.data does per iterator is paid per epoch. Deleting an iterator waits for its
    # autotuning thread, idle, for up to 2.5 s (measured: 0.3-1.3 s after most epochs of
    # the MNIST sample, as long as the epoch's steps of a small model; 0 CPU-seconds):
    # no autotuning, so AUTOTUNE map parallelism is the core count and prefetch buffers
    # still grow on demand (tf.data's legacy prefetch autotuner). Making an iterator
    # rewrites the pipeline's graph with the default optimizations (41 ms against 13 ms
    # without, median, interleaved): the pipelines here are already batched, parallel and
    # prefetched, so they are skipped.
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return dataset.with_options(options)


class _Clock:
    def __init__(self, seconds, part):
        self.seconds, self.part = seconds, part

    def __enter__(self):
        self.start = time.perf_counter()

    def __exit__(self, *exc):
        self.seconds[self.part] += time.perf_counter() - self.start


HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end")


class TimedCallback(keras.callbacks.Callback):
    """Runs a callback's hooks, adding their time to `profile` as `callback/<its class name>`."""

    def __init__(self, callback, profile):
        super().__init__()
        self.callback = callback
        self.part = f"callback/{type(callback).__name__}"
        self.profile = profile

    def set_model(self, model):
        self.callback.set_model(model)

    def set_params(self, params):
        self.callback.set_params(params)


def _timed_hook(name):
    def hook(self, *args, **kwargs):
        with self.profile.clock(self.part):
            return getattr(self.callback, name)(*args, **kwargs)

    hook.__name__ = name
    return hook


for _name in HOOKS:
    setattr(TimedCallback, _name, _timed_hook(_name))
