"""Callbacks that the stock Keras ones do not cover: objective schedules, image summaries, Ctrl-C."""

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


class ImageSummaries(keras.callbacks.Callback):
    """Writes to TensorBoard, every `every` epochs: inputs beside reconstructions, prior samples,
    and the pictures of the model's family (class rows of a conditional model, pseudo-inputs).

    The inputs and the prior noise are fixed at construction, so epochs compare like with like.

    Args:
        log_dir: str. TensorBoard folder (a subfolder `images` is written).
        inputs: array of images in [0, 1], e.g. 16 validation images.
        num_samples: int. Number of prior samples.
        every: int. Log every this many epochs (and always after the last one).
        seed: int. Seed of the prior noise.
    """

    def __init__(self, log_dir, inputs, num_samples=64, every=1, seed=0):
        super().__init__()
        self.writer = tf.summary.create_file_writer(f"{log_dir}/images")
        self.inputs = np.asarray(inputs, dtype=np.float32)
        self.num_samples = num_samples
        self.seed = seed
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0 or epoch + 1 == self.params.get("epochs"):
            self.write(epoch + 1)

    def write(self, step):
        with self.writer.as_default(step=step):
            tf.summary.image(
                "reconstructions", pictures.reconstructions(self.model, self.inputs)[None],
                description="Rows of inputs, each followed by their reconstructions (z = mean).",
            )
            tf.summary.image(
                "prior_samples", pictures.sample_grid(self.model, self.num_samples, self.seed)[None],
                description="Means of p(x|z) for fixed draws z ~ p(z), the model's prior.",
            )
            for name, picture in pictures.family_grids(self.model).items():
                tf.summary.image(name, picture[None])
        self.writer.flush()


class StopRequested(Exception):
    """Raised between batches after a Ctrl-C (SIGINT) or a preemption notice (SIGTERM)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class GracefulInterrupt(keras.callbacks.Callback):
    """Turns the first Ctrl-C or SIGTERM into a stop at the next batch boundary.

    A KeyboardInterrupt raised while TensorFlow runs native code can corrupt its heap (seen here:
    "free(): invalid next size" aborts in about 1 of 5 interrupts), so the signal only sets a flag
    and the exception is raised from Python between batches, where stopping (and saving a
    checkpoint) is safe. SIGTERM is what clusters send before they kill a preempted job. A second
    Ctrl-C interrupts at once, as usual.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.requested = None
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
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signum
        what = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        print(f"\n{what}: stopping after this batch and saving a checkpoint"
              + (" (press Ctrl-C again to quit at once)" if signum == signal.SIGINT else ""),
              file=sys.stderr, flush=True)

    def _check(self, *args, **kwargs):
        if self.requested is not None:
            raise StopRequested(self.requested)

    on_train_batch_end = on_test_batch_end = on_epoch_end = _check
