"""The checks every zoo model passes. A model's test file names it and inherits them all:

    class TestConvVAE(ZooModelChecks):
        model_name = "conv_vae"
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.config import RunConfig
from vae_zoo.config import load_zoo_config
from vae_zoo.layers import Sampling

IMAGE_SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]


def build_zoo_model(model_name, image_shape, **overrides):
    raw = load_zoo_config(model_name)
    raw["model"].update(overrides)
    return RunConfig.from_dict(raw).model.build(image_shape)


def structured_images(n, image_shape, seed=0):
    """Blurry blobs in [0, 1]: images with structure a VAE can learn in a few steps."""
    rng = np.random.default_rng(seed)
    h, w, c = image_shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    centres = rng.uniform(0.2, 0.8, size=(n, 2, c))
    d2 = (yy[None, :, :, None] - centres[:, None, None, 0]) ** 2 + (
        xx[None, :, :, None] - centres[:, None, None, 1]
    ) ** 2
    return np.exp(-d2 / 0.02).astype("float32")


def deterministic_sampling(monkeypatch):
    """Replaces eps ~ N(0, I) by a fixed function of z_mean, so that runs on 1 and 2 replicas draw
    the same eps for the same example."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = tf.stop_gradient(tf.sin(10.0 * z_mean + 1.0))
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    monkeypatch.setattr(Sampling, "call", call)


class ZooModelChecks:
    model_name = None
    model_overrides = {}  # model config values that differ from zoo_configs/<model_name>.yaml

    def build(self, image_shape=(28, 28, 1)):
        return build_zoo_model(self.model_name, image_shape, **self.model_overrides)

    @pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
    def test_shapes(self, image_shape):
        model = self.build(image_shape)
        x = structured_images(3, image_shape)
        outputs = model(x)
        assert outputs["z_mean"].shape == (3, model.latent_dim)
        assert outputs["z_log_var"].shape == (3, model.latent_dim)
        assert outputs["z"].shape == (3, model.latent_dim)
        assert outputs["x_params"].shape == (3, *image_shape)
        z_mean, z_log_var = model.encode(x)
        assert z_mean.shape == z_log_var.shape == (3, model.latent_dim)
        assert model.decode(z_mean).shape == (3, *image_shape)
        assert model.reconstruct(x).shape == (3, *image_shape)
        samples = keras.ops.convert_to_numpy(model.sample(5))
        assert samples.shape == (5, *image_shape)
        if model.likelihood_name == "bernoulli":
            assert samples.min() >= 0.0 and samples.max() <= 1.0

    @pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
    def test_training_lowers_the_loss(self, image_shape):
        keras.utils.set_random_seed(0)
        model = self.build(image_shape)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        x = structured_images(64, image_shape)
        history = model.fit(x, batch_size=16, epochs=4, verbose=0, shuffle=False)
        losses = history.history["loss"]
        assert np.all(np.isfinite(losses))
        assert losses[-1] < 0.9 * losses[0], losses
        for key in ("reconstruction", "kl", "elbo"):
            assert np.isfinite(history.history[key][-1])

    def test_config_round_trip(self):
        model = self.build()
        config = model.get_config()
        clone = type(model).from_config(config)
        assert clone.get_config() == config
        assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]

    def test_saved_model_reloads_with_identical_outputs(self, tmp_path, mnist_images):
        model = self.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        model.fit(mnist_images[:64], batch_size=32, epochs=1, verbose=0)
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model)
        assert loaded.get_config() == model.get_config()
        x = mnist_images[:8]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded.reconstruct(x)),
            keras.ops.convert_to_numpy(model.reconstruct(x)),
        )
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2

    def test_one_and_two_replicas_take_the_same_step(self, monkeypatch, mnist_images):
        """The loss is averaged over the global batch, so the strategy's SUM of per-replica
        gradients equals the single-device gradient (a plain mean would double it)."""
        deterministic_sampling(monkeypatch)
        x = mnist_images[:16]
        deltas = {}
        initial = None
        for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
            # ReductionToOneDevice: the default collective all-reduce reuses instance keys across
            # strategies in one process and fails on the second model built in the session.
            strategy = tf.distribute.MirroredStrategy(
                devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
            )
            with strategy.scope():
                model = self.build()
                model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
            assert model.distribute_strategy.num_replicas_in_sync == len(devices)
            dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
            model.fit(dataset, epochs=1, verbose=0, shuffle=False)
            deltas[len(devices)] = [w - w0 for w, w0 in zip(model.get_weights(), initial)]
        moved = max(np.abs(d).max() for d in deltas[1])
        assert moved > 1e-4  # the step did something, so a factor of 2 would show
        for one, two in zip(deltas[1], deltas[2]):
            np.testing.assert_allclose(two, one, rtol=1e-3, atol=1e-6 * moved)
