"""IWAE: the harness, and the k-sample bound against numpy from the same draws."""

import keras
import numpy as np
import pytest

from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise


def numpy_log_weights(model, x, eps):
    """log p(x|z_k) + log N(z_k; 0, I) - log q(z_k|x) in float64, z_k = mu + sigma * eps_k."""
    mu, log_var = (t.numpy().astype("float64") for t in model.encoder(x))
    z = mu + np.exp(0.5 * log_var) * eps  # (k, batch, latent)
    logits = model.decoder(z.reshape(-1, z.shape[-1]).astype("float32")).numpy()
    logits = logits.astype("float64").reshape(*z.shape[:2], *x.shape[1:])
    log_px = np.sum(x * logits - np.logaddexp(0, logits), axis=(2, 3, 4))
    log_pz = np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), axis=-1)
    log_q = np.sum(-0.5 * eps**2 - 0.5 * np.log(2 * np.pi) - 0.5 * log_var, axis=-1)
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=-1)
    return log_px, log_pz - log_q, kl


def log_mean_exp(a):
    m = a.max(axis=0)
    return m + np.log(np.mean(np.exp(a - m), axis=0))


@pytest.mark.parametrize("k", [1, 4])
def test_loss_is_the_negative_k_sample_bound_from_the_same_draws(monkeypatch, mnist_images, k):
    model = build_zoo_model("iwae", (28, 28, 1), k=k, hidden_units=[32], latent_dim=3)
    x = mnist_images[:5]
    eps = np.random.default_rng(k).standard_normal((k, 5, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    log_px, log_ratio, kl = numpy_log_weights(model, x, eps)
    bound = log_mean_exp(log_px + log_ratio)

    outputs = model(x)
    loss = float(model.compute_loss(x=x, y_pred=outputs))
    np.testing.assert_allclose(loss, -bound.mean(), rtol=1e-5)
    terms = {name: t.numpy() for name, t in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["loss"], -bound, rtol=1e-5)
    np.testing.assert_allclose(terms["iwae_bound"], bound, rtol=1e-5)
    np.testing.assert_allclose(terms["reconstruction"], -log_px.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4)
    np.testing.assert_allclose(terms["elbo"], log_px.mean(axis=0) - kl, rtol=1e-5)
    # The metric's weights are the objective's: the same function, the same draws.
    np.testing.assert_allclose(model.log_importance_weights(x, k).numpy(), log_px + log_ratio,
                               rtol=1e-5)
    if k == 1:  # the VAE's negative ELBO, its KL estimated at the drawn z
        np.testing.assert_allclose(terms["loss"], -log_px[0] - log_ratio[0], rtol=1e-5)
    else:  # Jensen: the k-sample bound is above the mean of the k one-sample ELBOs
        assert (bound > (log_px + log_ratio).mean(axis=0)).all()


def test_k1_is_the_vae_negative_elbo_in_expectation(mnist_images):
    """Same weights, k = 1: IWAE's loss and the VAE's (whose KL is in closed form) are two
    estimates of the same negative ELBO; over 500 draws each they agree within 4 standard errors."""
    keras.utils.set_random_seed(0)
    iwae = build_zoo_model("iwae", (28, 28, 1), k=1)
    vae = build_zoo_model("dense_vae", (28, 28, 1))
    vae.set_weights(iwae.get_weights())
    x = np.repeat(mnist_images[:4], 500, axis=0)  # each image 500 times: one draw each
    a = iwae.loss_terms({"x": x}, iwae(x))["loss"].numpy().reshape(4, 500)
    b = vae.loss_terms({"x": x}, vae(x))["loss"].numpy().reshape(4, 500)
    standard_error = np.sqrt(a.var(axis=1) / 500 + b.var(axis=1) / 500)
    assert (np.abs(a.mean(axis=1) - b.mean(axis=1)) < 4 * standard_error).all()
    assert (a.std(axis=1) > b.std(axis=1)).all()  # the Monte Carlo KL adds variance


def test_the_kl_schedule_tempers_the_ratio_inside_each_weight(monkeypatch, mnist_images):
    model = build_zoo_model("iwae", (28, 28, 1), k=3, hidden_units=[32], latent_dim=3,
                            kl_schedule="linear", kl_schedule_steps=100)
    x = mnist_images[:5]
    eps = np.random.default_rng(0).standard_normal((3, 5, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    log_px, log_ratio, _ = numpy_log_weights(model, x, eps)
    model.steps_trained.assign(30)
    loss = model.loss_terms({"x": x}, model(x))["loss"].numpy()
    np.testing.assert_allclose(loss, -log_mean_exp(log_px + 0.3 * log_ratio), rtol=1e-5)


class TestIWAE(ZooModelChecks):
    model_name = "iwae"
