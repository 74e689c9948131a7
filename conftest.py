"""Test setup for tests/ and the model tests beside each family: two logical CPUs (for the
replica-equality test) before TensorFlow initialises, and real MNIST digits."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Prepared datasets (image folders, TFDS splits) go to a folder of this test session, not the
# user's cache; subprocesses (train.py runs) inherit it.
if "VAE_ZOO_CACHE" not in os.environ:
    import tempfile

    os.environ["VAE_ZOO_CACHE"] = tempfile.mkdtemp(prefix="vae_zoo-test-cache-")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mnist_images():
    """512 real MNIST training digits in [0, 1], shape (512, 28, 28, 1)."""
    from vae_zoo.data.sources.mnist import EMBEDDED_MNIST

    with np.load(EMBEDDED_MNIST) as data:
        x = data["x_train"][np.random.default_rng(0).permutation(5000)[:512]]
    return (x[..., None] / 255.0).astype("float32")
