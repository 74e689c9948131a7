"""The likelihood estimator against a model whose log p(x) is known in closed form, and the
evaluation metrics and pictures."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.evaluation.likelihood import importance_weighted_log_likelihood
from vae_zoo.evaluation.metrics import bits_per_dim
from vae_zoo.evaluation.metrics import latent_statistics
from vae_zoo.models import VAE

tfd = tfp.distributions
SIGMA = 0.5


def linear_gaussian_vae(exact_posterior):
    """x = W z + b + N(0, SIGMA^2 I), z ~ N(0, I): log p(x) = log N(x; b, W W^T + SIGMA^2 I).

    W has orthogonal columns, so the true posterior N(M^-1 W^T (x - b) / SIGMA^2, M^-1) with
    M = I + W^T W / SIGMA^2 is diagonal and the encoder (linear, as built) can be set to it exactly.
    """
    model = VAE((4,), latent_dim=2, network="dense", hidden_units=[], likelihood="gaussian",
                sigma=SIGMA)
    w = np.array([[1.0, 0.5], [1.0, -0.5], [-1.0, 0.5], [-1.0, -0.5]], "float32")  # W^T W diagonal
    b = np.array([0.1, -0.2, 0.3, 0.0], "float32")
    decoder_dense = model.decoder.get_layer("output")
    decoder_dense.set_weights([w.T, b])
    m_inv = np.linalg.inv(np.eye(2) + w.T @ w / SIGMA**2)
    head = model.encoder.get_layer("posterior")
    mean_kernel = (m_inv @ w.T / SIGMA**2).T.astype("float32")  # z_mean = (x - b) @ mean_kernel
    log_var = np.log(np.diag(m_inv)).astype("float32")
    if not exact_posterior:  # a wrong but reasonable posterior: shifted mean, wider variance
        mean_kernel, log_var = mean_kernel * 0.8, log_var + 0.7
    head.mean_dense.set_weights([mean_kernel, -b @ mean_kernel])
    head.log_var_dense.set_weights([np.zeros((4, 2), "float32"), log_var])
    marginal = tfd.MultivariateNormalTriL(b, tf.linalg.cholesky(w @ w.T + SIGMA**2 * np.eye(4, dtype="float32")))
    return model, marginal


def data(marginal, n=64):
    return marginal.sample(n, seed=1).numpy().astype("float32")


def test_exact_posterior_gives_log_p_x_for_any_k():
    model, marginal = linear_gaussian_vae(exact_posterior=True)
    x = data(marginal)
    expected = marginal.log_prob(x).numpy()
    for k in (1, 10):
        np.testing.assert_allclose(importance_weighted_log_likelihood(model, x, k).numpy(),
                                   expected, atol=1e-3)


def test_estimate_tightens_towards_log_p_x_as_k_grows():
    model, marginal = linear_gaussian_vae(exact_posterior=False)
    x = data(marginal)
    true_ll = marginal.log_prob(x).numpy().mean()
    estimates = {k: importance_weighted_log_likelihood(model, x, k, chunk_size=700).numpy().mean()
                 for k in (1, 50, 5000)}
    assert estimates[1] < estimates[50] < estimates[5000] + 1e-3
    assert true_ll - estimates[1] > 0.2  # the wrong posterior costs something at k = 1 ...
    assert abs(estimates[5000] - true_ll) < 0.02  # ... and almost nothing at k = 5000


def test_k_equal_one_is_the_elbo_in_expectation():
    model, marginal = linear_gaussian_vae(exact_posterior=False)
    x = np.repeat(data(marginal, 4), 500, axis=0)
    iw1 = importance_weighted_log_likelihood(model, x, 1).numpy().mean()
    elbo = -np.mean(sum(t.numpy() for t in model.elbo_terms(x, model(x))))
    assert abs(iw1 - elbo) < 0.1


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784, "bernoulli") == pytest.approx(1.0)
    # A Gaussian density is turned into 8-bit pixel probabilities: + 8 bits per dimension.
    assert bits_per_dim(0.0, 10, "gaussian") == pytest.approx(8.0)


def test_active_units_count_latent_means_that_vary():
    model = VAE((4,), latent_dim=3, network="dense", hidden_units=[])
    head = model.encoder.get_layer("posterior")
    kernel = np.zeros((4, 3), "float32")
    kernel[0, 0], kernel[1, 1] = 1.0, 0.05  # unit 0 varies (var 1/12), unit 1 barely, unit 2 not
    head.mean_dense.set_weights([kernel, np.zeros(3, "float32")])
    x = np.random.default_rng(0).uniform(size=(2000, 4)).astype("float32")
    z_means, stats = latent_statistics(model, tf.data.Dataset.from_tensor_slices(x).batch(500))
    assert z_means.shape == (2000, 3)
    assert stats["active_units"] == 1 and stats["latent_dim"] == 3
    assert stats["latent_mean_variances"][0] == pytest.approx(1 / 12, rel=0.1)
