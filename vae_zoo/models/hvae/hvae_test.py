"""HVAE: the harness, and the ELBO and the importance weights of a tiny model against numpy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.layers import Sampling
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model

D1, D2 = 3, 2


def tiny_model(**overrides):
    keras.utils.set_random_seed(0)
    return build_zoo_model("hvae", (28, 28, 1), hidden_units=[8], latent_dim=D1,
                           top_latent_dim=D2, top_hidden_units=[5, 4], **overrides)


def noise_by_size(monkeypatch, eps):
    """Every `Sampling` draw of a layer of size d uses `eps[d]` as its N(0, I) noise."""

    def call(self, inputs, seed=None):
        z_mean, z_log_var = inputs
        noise = tf.constant(eps[z_mean.shape[-1]], z_mean.dtype)
        return z_mean + tf.exp(0.5 * z_log_var) * tf.reshape(noise, tf.shape(z_mean))

    monkeypatch.setattr(Sampling, "call", call)


def numpy_gaussian_mlp(network, h):
    """The Dense-ReLU layers of `network`, then its Gaussian head, from its weights in float64."""
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, bias = (w.numpy().astype("float64") for w in layer.weights)
            h = np.maximum(h @ kernel + bias, 0.0)
    head = network.layers[-1]
    mean = h @ head.mean_dense.kernel.numpy() + head.mean_dense.bias.numpy()
    log_var = h @ head.log_var_dense.kernel.numpy() + head.log_var_dense.bias.numpy()
    return mean, np.clip(log_var, -20.0, 10.0)


def log_normal(z, mean, log_var):
    return np.sum(-0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var)), -1)


def numpy_hierarchy(model, x, eps1, eps2):
    """Every density of the two layers at z1 = mu1 + s1 eps1, z2 = mu2(z1) + s2(z1) eps2."""
    mu1, lv1 = (t.numpy().astype("float64") for t in model.encoder(x))
    z1 = mu1 + np.exp(0.5 * lv1) * eps1
    mu2, lv2 = numpy_gaussian_mlp(model.top_encoder, z1)
    z2 = mu2 + np.exp(0.5 * lv2) * eps2
    prior_mean, prior_lv = numpy_gaussian_mlp(model.top_decoder, z2)
    logits = model.decoder(z1.reshape(-1, D1).astype("float32")).numpy().astype("float64")
    logits = logits.reshape(*z1.shape[:-1], *x.shape[1:])
    log_px = np.sum(x * logits - np.logaddexp(0, logits), axis=(-3, -2, -1))
    return dict(
        log_px=log_px, log_q1=log_normal(z1, mu1, lv1), log_q2=log_normal(z2, mu2, lv2),
        log_p1=log_normal(z1, prior_mean, prior_lv), log_p2=log_normal(z2, 0.0, 0.0),
        kl2=0.5 * np.sum(np.exp(lv2) + mu2**2 - 1 - lv2, axis=-1))


def test_elbo_of_a_tiny_hvae_by_hand(monkeypatch, mnist_images):
    model = tiny_model(beta=2.0)
    x = mnist_images[:4]
    rng = np.random.default_rng(0)
    eps1, eps2 = rng.standard_normal((4, D1)), rng.standard_normal((4, D2))
    noise_by_size(monkeypatch, {D1: eps1, D2: eps2})
    d = numpy_hierarchy(model, x, eps1, eps2)
    kl1, kl2 = d["log_q1"] - d["log_p1"], d["kl2"]

    outputs = model(x, training=True)
    terms = {k: v.numpy() for k, v in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["reconstruction"], -d["log_px"], rtol=1e-5)
    np.testing.assert_allclose(terms["kl_z1"], kl1, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["kl_z2"], kl2, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["elbo"], d["log_px"] - kl1 - kl2, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], -d["log_px"] + 2.0 * (kl1 + kl2), rtol=1e-5)


def test_importance_weights_are_the_joint_densities_by_hand(monkeypatch, mnist_images):
    model = tiny_model()
    x = mnist_images[:3]
    rng = np.random.default_rng(1)
    eps1, eps2 = rng.standard_normal((5, 3, D1)), rng.standard_normal((5, 3, D2))
    noise_by_size(monkeypatch, {D1: eps1, D2: eps2})
    d = numpy_hierarchy(model, x, eps1, eps2)
    expected = d["log_px"] + d["log_p1"] + d["log_p2"] - d["log_q1"] - d["log_q2"]
    np.testing.assert_allclose(model.log_importance_weights(x, 5).numpy(), expected,
                               rtol=1e-5, atol=1e-4)


def test_one_weight_is_the_elbo_in_expectation(mnist_images):
    """log w at k = 1 and the training ELBO (z2's KL in closed form) estimate the same ELBO."""
    model = tiny_model()
    x = np.repeat(mnist_images[:2], 2000, axis=0)
    weights = model.log_importance_weights(x, 1).numpy().reshape(2, 2000)
    elbo = model.loss_terms({"x": x}, model(x, training=True))["elbo"].numpy().reshape(2, 2000)
    standard_error = np.sqrt(weights.var(axis=1) / 2000 + elbo.var(axis=1) / 2000)
    assert (np.abs(weights.mean(axis=1) - elbo.mean(axis=1)) < 4 * standard_error).all()


def test_samples_are_ancestral_through_p_z1_given_z2():
    """A top decoder whose p(z1|z2) is narrow and centred far from 0: z1 draws sit at its
    means, which N(0, I) draws of z1 would not."""
    model = tiny_model(prior_min_log_var=-20.0)
    head = model.top_decoder.layers[-1]
    head.log_var_dense.kernel.assign(np.zeros(head.log_var_dense.kernel.shape))
    head.log_var_dense.bias.assign(np.full(D1, -12.0))
    head.mean_dense.bias.assign(np.full(D1, 5.0))
    z1 = model.sample_latents(500, seed=2).numpy()
    assert np.abs(z1.mean(axis=0) - 5.0).max() < 2.0
    means, _ = numpy_gaussian_mlp(model.top_decoder,
                                  tf.random.stateless_normal([500, D2], seed=[2, 0]).numpy())
    np.testing.assert_allclose(z1, means, atol=1e-2)
    np.testing.assert_allclose(model.sample(4, seed=2).numpy(),
                               model.decode(z1[:4]).numpy(), atol=1e-5)


def test_the_learned_prior_cannot_narrow_past_its_floor():
    model = tiny_model()
    head = model.top_decoder.layers[-1]
    head.log_var_dense.bias.assign(np.full(D1, -12.0))
    _, log_var = model.top_decoder(np.zeros((2, D2), "float32"))
    assert log_var.numpy().min() >= -6.0
    assert model.top_encoder.layers[-1].min_log_var == -20.0  # q(z2|z1) keeps the usual clamp
    with pytest.raises(UserInputError, match=r"prior_min_log_var must be in \[-20, 10\), got 11"):
        tiny_model(prior_min_log_var=11)


class TestHVAE(ZooModelChecks):
    model_name = "hvae"
