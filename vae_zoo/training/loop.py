"""One training loop for every tf.distribute strategy, MultiWorkerMirroredStrategy included.

Keras 3's `fit` breaks under MultiWorkerMirroredStrategy (keras-team/keras#20585: it reduces
nested logs and scalars in ways MWMS refuses). This loop keeps `fit`'s user-visible behaviour
(Keras callbacks and their hooks, the progress bar, `History`, `val_` logs, `stop_training`) and
runs the model's own `train_step`/`test_step` under `strategy.run`, so any model, including one
with a second optimizer, trains the same way on one device, several, or several machines.

It also knows where it is: epoch, step within the epoch, and the dataset of each epoch is rebuilt
from `(seed, epoch)` and skipped forward on resume, so a run restarted from a step checkpoint sees
exactly the batches it would have seen.

It measures itself (`profile`): seconds inside the training and validation steps, waiting for
data, and in each callback, and how often each step function was traced, so that the cost of
everything around the steps is known (benchmarks/time_to_result.py, `timing` in metrics.json).
"""

import collections
import math
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


class TrainingLoop:
    """`fit` for any strategy, resumable at any step.

    Args:
        model: a compiled `ZooModel`, built under `strategy.scope()`.
        strategy: the `tf.distribute.Strategy` the model was built under.
        jit_compile: bool. Compile the step functions with XLA.
    """

    def __init__(self, model, strategy, jit_compile=False):
        self.model = model
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.epoch = 0  # the epoch being trained (or next to train)
        self.step = 0  # batches of `epoch` already trained
        self.profile = Profile()
        self._functions = {}
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
        several_workers = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

        def one_step(batch):
            local_logs = strategy.run(step_fn, args=(batch,))
            if not several_workers:
                # Keras metric variables sum their replicas on read: the global values.
                return model.get_metrics_result()
            # Across machines every read of a metric variable is a collective: one per step for
            # the running loss (for the NaN check and the progress bar); the other terms are
            # read once, at the end of the epoch.
            return {"loss": strategy.reduce("MEAN", local_logs["loss"], axis=None)}

        return tf.function(one_step, jit_compile=self.jit_compile, input_signature=[element_spec])

    def distribute(self, dataset):
        options = tf.data.Options()
        # In-memory data cannot be sharded by file: every worker reads all and keeps its share.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def fit(self, train_batches, epochs, steps_per_epoch, validation_data=None, callbacks=(),
            verbose=1, initial_epoch=0, initial_step=0):
        """Trains from `(initial_epoch, initial_step)` to the end of `epochs`; returns History.

        Args:
            train_batches: callable `epoch -> tf.data.Dataset` of global batches of that epoch.
            epochs: int. The epoch to stop after.
            steps_per_epoch: int. Batches in one epoch.
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
            return self._fit(callbacks, train_batches, epochs, validation_data, initial_epoch,
                             initial_step)
        finally:
            self.profile.add_total(time.perf_counter() - start)

    def _fit(self, callbacks, train_batches, epochs, validation_data, initial_epoch,
             initial_step):
        model, clock = self.model, self.profile.clock
        model.stop_training = False
        self.epoch, self.step = initial_epoch, initial_step
        callbacks.on_train_begin()
        logs, epoch_logs = {}, None
        while self.epoch < epochs:
            epoch = self.epoch
            with clock("metrics"):
                model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            with clock("data"):
                batches = self.distribute(train_batches(epoch).skip(self.step))
                train_function = self._function("train", batches)
            for batch in self.profile.timed_iter(batches):
                callbacks.on_train_batch_begin(self.step)
                with clock("train_steps"):
                    logs = train_function(batch)
                    logs = {key: float(value) for key, value in logs.items()}
                if not math.isfinite(logs.get("loss", 0.0)):
                    raise TrainingDiverged(epoch, self.step, self.global_step(), logs)
                self.step += 1
                callbacks.on_train_batch_end(self.step - 1, logs)
                if model.stop_training:
                    break
            with clock("metrics"):
                epoch_logs = self.metrics_result()
            if validation_data is not None:
                val_logs = self.evaluate(validation_data, callbacks)
                epoch_logs.update({f"val_{key}": value for key, value in val_logs.items()})
            self.epoch, self.step = epoch + 1, 0
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
        callbacks.on_train_end(logs=epoch_logs)
        return model.history

    def evaluate(self, batches, callbacks=None):
        """Mean of every tracked term over `batches`; runs the test hooks of `callbacks`."""
        model = self.model
        model.reset_metrics()
        if callbacks is not None:
            callbacks.on_test_begin()
        logs, step = {}, 0
        clock = self.profile.clock
        with clock("data"):
            batches = self.distribute(batches)
            test_function = self._function("test", batches)
        for batch in self.profile.timed_iter(batches):
            if callbacks is not None:
                callbacks.on_test_batch_begin(step)
            with clock("validation_steps"):
                logs = test_function(batch)
                logs = {key: float(value) for key, value in logs.items()}
            if callbacks is not None:
                callbacks.on_test_batch_end(step, logs)
            step += 1
        logs = self.metrics_result()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def metrics_result(self):
        """Every tracked term, as floats: the global values, whatever the strategy."""
        return {key: float(value) for key, value in self.model.get_metrics_result().items()}

    def global_step(self):
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

    def timed_iter(self, iterable):
        """Iterates `iterable`, counting the time to fetch each item as `data`."""
        iterator = iter(iterable)
        while True:
            with self.clock("data"):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item

    def as_dict(self):
        parts = dict(sorted(self.seconds.items()))
        if self.total:
            parts["other"] = self.total - sum(parts.values())
        return {part: round(seconds, 4) for part, seconds in parts.items()}


_END = object()


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
