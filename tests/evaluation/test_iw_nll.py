"""The importance-weighted likelihood estimator against a model whose log p(x) is known in
closed form, and its conversion to bits per dimension."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.evaluation import EvalSettings
from vae_zoo.evaluation.iw_nll import bits_per_dim
from vae_zoo.evaluation.iw_nll import importance_weighted_log_likelihood
from vae_zoo.evaluation.iw_nll import importance_weighted_nll
from vae_zoo.networks.precision import in_precision
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
    return marginal.sample(n, seed=(1, 2)).numpy().astype("float32")  # stateless: same every run


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
    assert true_ll - estimates[1] > 0.2  # the wrong posterior costs something at k = 1 ...
    assert abs(true_ll - estimates[50]) < (true_ll - estimates[1]) / 2  # ... less at k = 50 ...
    assert abs(estimates[5000] - true_ll) < 0.02  # ... and almost nothing at k = 5000


def test_k_equal_one_is_the_elbo_in_expectation():
    model, marginal = linear_gaussian_vae(exact_posterior=False)
    x = np.repeat(data(marginal, 4), 2000, axis=0)  # 8000 draws: SE of the gap 0.024
    iw1 = importance_weighted_log_likelihood(model, x, 1).numpy().mean()
    elbo = np.mean(model.loss_terms({"x": x}, model(x))["elbo"].numpy())
    assert abs(iw1 - elbo) < 0.1


def test_the_metric_averages_over_the_first_examples_of_the_batches():
    model, marginal = linear_gaussian_vae(exact_posterior=True)
    x = data(marginal, 50)
    batches = tf.data.Dataset.from_tensor_slices({"x": x}).batch(16)
    results = importance_weighted_nll(model, batches, EvalSettings(iw_samples=3, iw_examples=37))
    assert results["iw_examples"] == 37 and results["iw_samples"] == 3
    np.testing.assert_allclose(results["iw_nll"], -marginal.log_prob(x[:37]).numpy().mean(),
                               rtol=1e-4)
    assert results["iw_bits_per_dim"] == pytest.approx(bits_per_dim(results["iw_nll"], 4, True))


def test_bits_per_dim():
    assert bits_per_dim(784 * math.log(2), 784, continuous=False) == pytest.approx(1.0)
    # A density on pixels is turned into 8-bit pixel probabilities: + 8 bits per dimension.
    assert bits_per_dim(0.0, 10, continuous=True) == pytest.approx(8.0)


def test_bfloat16_hidden_layers_estimate_the_same_within_their_precision():
    model = VAE((8, 8, 1), latent_dim=2, network="dense", hidden_units=[16])
    x = np.random.default_rng(0).integers(0, 2, (20, 8, 8, 1)).astype("float32")
    model(x)
    model.set_weights([w * 1.5 for w in model.get_weights()])  # unlike a fresh initialisation
    twin = in_precision(model, "mixed_bfloat16")
    def bfloat16_layers(m):
        return [layer.name for layer in m.decoder.layers if layer.compute_dtype == "bfloat16"]

    assert bfloat16_layers(twin) and not bfloat16_layers(model)
    for ours, theirs in zip(twin.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)

    batches = tf.data.Dataset.from_tensor_slices({"x": x}).batch(8)
    exact = importance_weighted_nll(model, batches, EvalSettings(iw_samples=500))
    fast = importance_weighted_nll(model, batches, EvalSettings(iw_samples=500,
                                                                iw_precision="mixed_bfloat16"))
    assert fast["iw_precision"] == "mixed_bfloat16" and "iw_precision" not in exact
    # Monte Carlo noise and bfloat16's 8-bit mantissa together: within 1% of about 45 nats.
    assert fast["iw_nll"] == pytest.approx(exact["iw_nll"], rel=0.01)


def test_a_model_trained_in_bfloat16_is_scored_in_float32_unless_asked(monkeypatch):
    """Its exports compute in float32, so its IW NLL does too by default."""
    from vae_zoo.evaluation import iw_nll

    model = VAE((8, 8, 1), latent_dim=2, network="dense", hidden_units=[16], dtype="mixed_bfloat16")
    x = np.random.default_rng(0).integers(0, 2, (8, 8, 8, 1)).astype("float32")
    model(x)
    used = []
    estimate = iw_nll.importance_weighted_log_likelihood
    monkeypatch.setattr(iw_nll, "importance_weighted_log_likelihood", lambda m, *args: (
        used.append({layer.compute_dtype for layer in m.decoder.layers}) or estimate(m, *args)))
    batches = tf.data.Dataset.from_tensor_slices({"x": x}).batch(8)
    default = importance_weighted_nll(model, batches, EvalSettings(iw_samples=10))
    assert used.pop() == {"float32"} and "iw_precision" not in default
    asked = importance_weighted_nll(model, batches, EvalSettings(iw_samples=10,
                                                                 iw_precision="mixed_bfloat16"))
    assert "bfloat16" in used.pop() and asked["iw_precision"] == "mixed_bfloat16"


def test_a_conditional_model_trained_in_bfloat16_is_scored_without_labels():
    """The float32 copy takes the weights without a call on data, which a cvae could not take
    without labels (`train.py --model cvae` failed at its evaluation when `auto` chose bf16)."""
    from vae_zoo.testing.harness import build_zoo_model

    model = build_zoo_model("cvae", (28, 28, 1), "mixed_bfloat16", num_classes=10)
    x = np.random.default_rng(0).integers(0, 2, (4, 28, 28, 1)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices({"x": x}).batch(4)
    result = importance_weighted_nll(model, batches, EvalSettings(iw_samples=4))
    assert np.isfinite(result["iw_nll"]) and result["iw_examples"] == 4
