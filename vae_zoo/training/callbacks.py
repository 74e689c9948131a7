"""Callbacks that the stock Keras ones do not cover (objective schedules, image summaries,
Ctrl-C) or do slowly (TensorBoard)."""

import signal
import sys
import threading

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import pictures


class ScheduleLogger(keras.callbacks.Callback):
    """Adds the model's objective scalars (beta, capacity, ...) to the epoch logs.

    Place it before `TensorBoard` and `CSVLogger` so that they record the values.
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.model.schedule_values())


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, with its epoch scalars written on a background thread.

    Two costs of Keras 3.15's callback fall on the training thread: with `update_freq="epoch"`
    it still builds a scalar summary of every log on every batch and throws it away (no writer is
    set for batches; about 2.5 ms a batch, 1 s in 10 epochs of the MNIST sample, measured), and
    each epoch's scalars are written and flushed at the epoch's end (about 40 ms an epoch). Here
    the per-batch work is skipped when nothing would be written, and with a `writer` the epoch's
    values are read on the training thread and written by the writer, in order; the event files
    hold the same tags, steps and values.

    Args:
        log_dir: str. As for `keras.callbacks.TensorBoard`.
        writer: a `BackgroundWriter`, or None to write on the training thread.
        **kwargs: the other arguments of `keras.callbacks.TensorBoard`.
    """

    def __init__(self, log_dir, writer=None, **kwargs):
        super().__init__(log_dir, **kwargs)
        self.writer = writer

    def _in_background(self):
        """Only epoch scalars go to the writer; histograms, embeddings, steps per second and
        per-batch summaries stay with Keras, on the training thread."""
        return (self.writer is not None and self.update_freq == "epoch"
                and not (self.histogram_freq or self.embeddings_freq
                         or self.write_steps_per_second))

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs if self.update_freq != "epoch" else None)

    def on_test_end(self, logs=None):
        if not self._in_background():
            return super().on_test_end(logs)
        optimizer = self.model.optimizer
        if logs and optimizer and hasattr(optimizer, "iterations"):
            step = int(keras.ops.convert_to_numpy(optimizer.iterations))
            self.writer.submit(write_scalars, self._val_writer, step, {
                f"evaluation_{name}_vs_iterations": value for name, value in logs.items()})

    def on_epoch_end(self, epoch, logs=None):
        if not self._in_background():
            return super().on_epoch_end(epoch, logs)
        if not logs:
            return
        train = self._collect_learning_rate(
            {name: value for name, value in logs.items() if not name.startswith("val_")})
        val = {name[4:]: value for name, value in logs.items() if name.startswith("val_")}
        for summary_writer, values in ((self._train_writer, train), (self._val_writer, val)):
            if values:
                self.writer.submit(write_scalars, summary_writer, epoch,
                                   {f"epoch_{name}": value for name, value in values.items()})

    def on_train_end(self, logs=None):
        if not self._in_background():
            return super().on_train_end(logs)
        self.writer.submit(super().on_train_end, logs)  # closes the files after the writes


def write_scalars(summary_writer, step, values):
    """Writes `{tag: number}` as scalars of `step` with `summary_writer`."""
    with summary_writer.as_default():
        for tag, value in values.items():
            tf.summary.scalar(tag, value, step=step)


DESCRIPTIONS = {
    "reconstructions": "Rows of inputs, each followed by their reconstructions (z = mean).",
    "prior_samples": "Means of p(x|z) for fixed draws z ~ p(z), the model's prior.",
}


class ImageSummaries(keras.callbacks.Callback):
    """Writes to TensorBoard, every `every` epochs: inputs beside reconstructions, prior samples,
    and the pictures of the model's family (class rows of a conditional model, pseudo-inputs).

    The inputs and the prior noise are fixed at construction, so epochs compare like with like.
    The pictures are computed at the epoch's end, from its weights; encoding them as PNG and
    writing the event file is left to `writer` (a `BackgroundWriter`) when one is given.

    Args:
        log_dir: str. TensorBoard folder (a subfolder `images` is written).
        inputs: array of images in [0, 1], e.g. 16 validation images.
        num_samples: int. Number of prior samples.
        every: int. Log every this many epochs (and always after the last one).
        seed: int. Seed of the prior noise.
        writer: a `BackgroundWriter`, or None to write on the training thread.
    """

    def __init__(self, log_dir, inputs, num_samples=64, every=1, seed=0, writer=None):
        super().__init__()
        self.summary_writer = tf.summary.create_file_writer(f"{log_dir}/images")
        self.inputs = np.asarray(inputs, dtype=np.float32)
        self.num_samples = num_samples
        self.seed = seed
        self.every = every
        self.writer = writer

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs"):
            self.write(epoch + 1)

    def write(self, step):
        grids = {
            "reconstructions": pictures.reconstructions(self.model, self.inputs),
            "prior_samples": pictures.sample_grid(self.model, self.num_samples, self.seed),
            **pictures.family_grids(self.model),
        }
        if self.writer is None:
            self._write_summaries(step, grids)
        else:
            self.writer.submit(self._write_summaries, step, grids)

    def _write_summaries(self, step, grids):
        with self.summary_writer.as_default(step=step):
            for name, grid in grids.items():
                tf.summary.image(name, grid[None], description=DESCRIPTIONS.get(name))
        self.summary_writer.flush()


class StopRequested(Exception):
    """Raised between batches after a Ctrl-C (SIGINT) or a preemption notice (SIGTERM)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class GracefulInterrupt(keras.callbacks.Callback):
    """Turns the first Ctrl-C or SIGTERM into a stop at a batch boundary, the same one on every
    worker of a multi-worker run.

    A KeyboardInterrupt raised while TensorFlow runs native code can corrupt its heap (seen here:
    "free(): invalid next size" aborts in about 1 of 5 interrupts), so the signal only asks the
    loop to stop (`TrainingLoop.request_stop`) and `StopRequested` is raised from Python between
    batches, where stopping (and saving a checkpoint) is safe: in one process at the next batch
    boundary; under MultiWorkerMirroredStrategy after the next step, on every worker, whichever
    worker got the signal. SIGTERM is what clusters send before they kill a preempted job. A
    second Ctrl-C interrupts at once, as usual.

    Args:
        loop: the `TrainingLoop` being fitted.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, loop):
        super().__init__()
        self.loop = loop
        self.requested = None  # the signal this process got
        self._previous_handlers = {}

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._handle)

    def on_train_end(self, logs=None):
        self.restore()

    def restore(self):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _handle(self, signum, frame):
        if self.requested is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return  # stopping already (e.g. a launcher passing SIGTERM on): let the save finish
        self.requested = signum
        self.loop.request_stop(signum)
        print(f"\n{_NAMES[signum]}: stopping after this batch and saving a checkpoint"
              + (" (press Ctrl-C again to quit at once)" if signum == signal.SIGINT else ""),
              file=sys.stderr, flush=True)

    def _check(self, *args, **kwargs):
        reason = self.loop.stop_reason
        if reason is None:
            return
        if self.requested is None:
            print(f"\n{_NAMES[reason]} on another worker: stopping after this batch and saving "
                  "a checkpoint", file=sys.stderr, flush=True)
        raise StopRequested(reason)

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check


_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
