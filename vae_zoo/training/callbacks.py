"""Callbacks that the stock Keras ones do not cover: objective schedules, image summaries, Ctrl-C."""

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
    """Writes to TensorBoard, every `every` epochs: inputs beside reconstructions, prior samples.

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
                description="Means of p(x|z) for fixed z ~ N(0, I).",
            )
        self.writer.flush()


class InterruptibleBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that can also save on demand, e.g. when the user presses Ctrl-C.

    A save mid-epoch records the epochs completed so far: `--resume` reruns the interrupted epoch,
    starting from the weights and optimizer state at the moment of the interrupt.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch  # epochs completed, also right after a resume

    def save_now(self):
        self._last_batch_seen = 0
        self._save_model()
