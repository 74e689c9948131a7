"""The probability pieces against closed forms."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.layers import LOG_VAR_BOUNDS
from vae_zoo.layers import BernoulliLikelihood
from vae_zoo.layers import DiagonalGaussianHead
from vae_zoo.layers import GaussianLikelihood
from vae_zoo.layers import Sampling
from vae_zoo.layers import Conv2DTranspose as TapConv2DTranspose
from vae_zoo.layers import get_likelihood
from vae_zoo.distributions import kl_to_standard_normal

rng = np.random.default_rng(0)


def test_kl_matches_the_closed_form():
    mu = rng.normal(size=(6, 5)).astype("float32")
    log_var = rng.normal(size=(6, 5)).astype("float32")
    expected = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1.0 - log_var, axis=-1)
    np.testing.assert_allclose(kl_to_standard_normal(mu, log_var).numpy(), expected, rtol=1e-5)


def test_kl_is_zero_at_the_prior():
    np.testing.assert_allclose(kl_to_standard_normal(np.zeros((2, 3), "float32"),
                                                     np.zeros((2, 3), "float32")), 0.0, atol=1e-6)


def test_bernoulli_log_likelihood_matches_the_closed_form():
    logits = rng.normal(size=(4, 5, 5, 1)).astype("float32")
    x = (rng.uniform(size=logits.shape) > 0.5).astype("float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype("float64")))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    got = BernoulliLikelihood().log_prob(x, logits).numpy()
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gaussian_log_likelihood_matches_the_closed_form():
    mean = rng.normal(size=(3, 4, 4, 3)).astype("float32")
    x = rng.uniform(size=mean.shape).astype("float32")
    sigma = 0.3
    d = x.size // 3
    expected = (-0.5 * np.sum((x - mean) ** 2, axis=(1, 2, 3)) / sigma**2
                - d * np.log(sigma) - 0.5 * d * np.log(2 * np.pi))
    got = GaussianLikelihood(sigma=sigma).log_prob(x, mean).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gaussian_sigma_is_fixed_unless_learned():
    assert GaussianLikelihood(sigma=0.5).trainable_weights == []
    learned = GaussianLikelihood(sigma=0.5, learn_sigma=True)
    assert len(learned.trainable_weights) == 1
    np.testing.assert_allclose(learned.scale().numpy(), 0.5, rtol=1e-6)
    x = np.zeros((2, 3), "float32")
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(learned.log_prob(x, x + 0.1))
    # With residuals of 0.1 the likelihood prefers a smaller sigma: the gradient on log sigma > 0.
    assert tape.gradient(loss, learned.log_sigma).numpy() > 0


def test_bad_likelihood_settings_are_user_errors():
    with pytest.raises(UserInputError, match="unknown likelihood 'poisson'"):
        get_likelihood("poisson")
    with pytest.raises(UserInputError, match="sigma must be > 0"):
        GaussianLikelihood(sigma=0.0)


def test_sampling_has_the_posterior_moments():
    mu = np.full((20000, 2), [1.5, -2.0], dtype="float32")
    log_var = np.full((20000, 2), [np.log(0.25), np.log(4.0)], dtype="float32")
    z = Sampling()((mu, log_var)).numpy()
    np.testing.assert_allclose(z.mean(axis=0), [1.5, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)


def test_sampling_passes_gradients_to_mean_and_log_var():
    mu = tf.Variable(np.zeros((4, 3), "float32"))
    log_var = tf.Variable(np.zeros((4, 3), "float32"))
    with tf.GradientTape() as tape:
        z = Sampling()((mu, log_var))
        loss = tf.reduce_sum(z**2)
    g_mu, g_log_var = tape.gradient(loss, [mu, log_var])
    assert np.abs(g_mu.numpy()).sum() > 0 and np.abs(g_log_var.numpy()).sum() > 0


def test_log_variance_is_clamped_so_extreme_features_stay_finite():
    head = DiagonalGaussianHead(4)
    features = np.full((2, 8), 1e6, dtype="float32")
    z_mean, z_log_var = head(features)
    assert z_log_var.numpy().max() <= LOG_VAR_BOUNDS[1]
    assert np.isfinite(kl_to_standard_normal(z_mean, z_log_var).numpy()).all()
    z_mean, z_log_var = head(-features)
    assert z_log_var.numpy().min() >= LOG_VAR_BOUNDS[0]


@pytest.mark.parametrize("layer", [Sampling(), DiagonalGaussianHead(3),
                                   GaussianLikelihood(0.2, True), BernoulliLikelihood(),
                                   TapConv2DTranspose(3, 5, padding="same", activation="relu")])
def test_layers_serialize(layer):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()


def test_tap_transposed_convolution_stamps_its_kernel_around_an_impulse():
    """By hand: a transposed convolution adds kernel[i, j] * x[p, q] to output pixel
    (p + i - 1, q + j - 1) for a 3x3 kernel; one non-zero pixel stamps the kernel (cropped at an
    edge), plus the bias everywhere."""
    layer = TapConv2DTranspose(1, 3, padding="same")
    kernel = np.arange(1, 10, dtype="float32").reshape(3, 3, 1, 1)
    layer.build((None, 5, 5, 1))
    layer.set_weights([kernel, np.array([0.5], "float32")])
    x = np.zeros((1, 5, 5, 1), "float32")
    x[0, 2, 2, 0], x[0, 0, 4, 0] = 2.0, 1.0
    expected = np.full((5, 5), 0.5, "float32")
    expected[1:4, 1:4] += 2.0 * kernel[:, :, 0, 0]
    expected[0:2, 3:5] += kernel[1:3, 0:2, 0, 0]
    np.testing.assert_allclose(layer(x, training=False)[0, :, :, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("filters,kernel_size", [(1, 3), (3, 3), (2, 4), (1, 5)])
def test_tap_transposed_convolution_equals_the_stock_op_outside_training(filters, kernel_size):
    layer = TapConv2DTranspose(filters, kernel_size, padding="same", activation="tanh")
    x = np.random.default_rng(0).normal(size=(3, 7, 6, 8)).astype("float32")
    layer(x)
    layer.set_weights([np.random.default_rng(1).normal(size=w.shape).astype("float32")
                       for w in layer.get_weights()])
    stock = keras.layers.Conv2DTranspose.from_config(layer.get_config())
    stock(x)
    stock.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x, training=False), stock(x), atol=1e-5)
    np.testing.assert_allclose(layer(x), stock(x), atol=1e-5)  # no training flag: inference
    # Training runs the stock op; strided layers always do.
    np.testing.assert_array_equal(layer(x, training=True), stock(x))
    strided = TapConv2DTranspose.from_config({**layer.get_config(), "strides": 2})
    strided(x)
    strided.set_weights(layer.get_weights())
    stock = keras.layers.Conv2DTranspose.from_config(strided.get_config())
    stock(x)
    stock.set_weights(layer.get_weights())
    np.testing.assert_array_equal(strided(x, training=False), stock(x))


def test_tap_transposed_convolution_loads_weights_saved_with_the_stock_layer(tmp_path):
    """`.keras` files find a layer's weights by its class name: models and checkpoints written
    with Keras' `Conv2DTranspose` must load into the tap layer (and back)."""
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype("float32")

    def decoder(kind):
        inputs = keras.Input((5, 5, 4))
        h = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same")(inputs)
        return keras.Model(inputs, kind(1, 3, padding="same")(h))

    stock, tap = decoder(keras.layers.Conv2DTranspose), decoder(TapConv2DTranspose)
    stock.save_weights(tmp_path / "stock.weights.h5")
    tap.load_weights(tmp_path / "stock.weights.h5")
    np.testing.assert_allclose(tap(x), stock(x), atol=1e-5)
    tap.save_weights(tmp_path / "tap.weights.h5")
    stock.load_weights(tmp_path / "tap.weights.h5")
