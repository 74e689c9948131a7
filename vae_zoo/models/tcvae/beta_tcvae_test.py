"""BetaTCVAE: the harness, the MWS and MSS estimates of log q(z) against the paper's formulas in
numpy, and the decomposed loss by hand."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.data import Data
from vae_zoo.data import DataSpec
from vae_zoo.errors import UserInputError
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise

N = 1000


def tiny_model(**overrides):
    return build_zoo_model("beta_tcvae", (28, 28, 1), train_size=N, network="dense", filters=None,
                           kernel_size=None, hidden_units=[16], latent_dim=3, **overrides)


def normal_density(z, mean, log_var):
    """N(z; mean, exp(log_var)) per dimension, float64."""
    return np.exp(-0.5 * (z - mean) ** 2 / np.exp(log_var)) / np.sqrt(2 * np.pi * np.exp(log_var))


def numpy_log_qz(z, mean, log_var, estimator, n=N):
    """Chen et al. (2018): log q(z_i) and sum_j log q(z_ij) from the batch's M posteriors, with
    the weights of minibatch weighted (section 3.1) or stratified sampling (appendix C.2), the
    stratified one's odd weight on the next example in the batch."""
    m = len(z)
    joint, marginals = np.zeros(m), np.zeros(m)
    for i in range(m):
        weights = np.full(m, 1 / (n * m))
        if estimator == "mss":
            weights = np.full(m, 1 / (m - 1))
            weights[i] = 1 / n
            weights[(i + 1) % m] = (n - m + 1) / (n * (m - 1))
        density = normal_density(z[i], mean, log_var)  # (m, latent): q(z_ij | x_m)
        joint[i] = np.log(np.sum(weights * np.prod(density, axis=1)))
        marginals[i] = np.sum(np.log(weights @ density))
    return joint, marginals


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_log_qz_estimates_follow_the_papers_formulas(estimator):
    model = tiny_model(estimator=estimator)
    rng = np.random.default_rng(0)
    mean = rng.normal(scale=0.7, size=(4, 3))
    log_var = rng.uniform(-1.5, 0.5, size=(4, 3))
    z = mean + np.exp(0.5 * log_var) * rng.standard_normal((4, 3))
    joint, marginals = model.log_aggregate_posterior(
        *(tf.constant(a, tf.float32) for a in (z, mean, log_var)))
    expected_joint, expected_marginals = numpy_log_qz(z, mean, log_var, estimator)
    np.testing.assert_allclose(joint.numpy(), expected_joint, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(marginals.numpy(), expected_marginals, rtol=1e-5, atol=1e-5)
    # Each row's weights sum to 1 for MSS, and to 1/N for MWS (the paper's 1/(N M) each).
    np.testing.assert_allclose(np.exp(model.log_weights(4).numpy()).sum(axis=1),
                               [1 / N if estimator == "mws" else 1.0] * 4, rtol=1e-5)


def numpy_terms(model, x, eps, estimator):
    """Reconstruction and the three terms in float64 from the encoder's and decoder's outputs."""
    mean, log_var = (t.numpy().astype("float64") for t in model.encoder(x))
    z = mean + np.exp(0.5 * log_var) * eps
    logits = model.decoder(z.astype("float32")).numpy().astype("float64")
    rec = -np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    log_qz_x = np.sum(np.log(normal_density(z, mean, log_var)), axis=1)
    log_pz = np.sum(np.log(normal_density(z, 0.0, 0.0)), axis=1)
    joint, marginals = numpy_log_qz(z, mean, log_var, estimator)
    return rec, log_qz_x - joint, joint - marginals, marginals - log_pz, log_qz_x - log_pz


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_loss_is_reconstruction_plus_the_weighted_terms(monkeypatch, mnist_images, estimator):
    model = tiny_model(estimator=estimator, alpha=2.0, beta=3.0, gamma=0.5)
    x = mnist_images[:5]
    eps = np.random.default_rng(1).standard_normal((5, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    rec, mi, tc, dwkl, _ = numpy_terms(model, x, eps, estimator)
    outputs = model(x, training=True)
    terms = {k: v.numpy() for k, v in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["index_code_mi"], mi, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["total_correlation"], tc, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["dimension_wise_kl"], dwkl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["loss"], rec + 2.0 * mi + 3.0 * tc + 0.5 * dwkl, rtol=1e-5)
    np.testing.assert_allclose(float(model.compute_loss(x=x, y_pred=outputs)),
                               np.mean(rec + 2.0 * mi + 3.0 * tc + 0.5 * dwkl), rtol=1e-5)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_unit_weights_give_the_negative_elbo_with_the_kl_at_z(monkeypatch, mnist_images,
                                                              estimator):
    """alpha = beta = gamma = 1: the terms telescope to log q(z|x) - log p(z), whatever the
    estimator: the VAE's loss with its KL estimated at the drawn z."""
    model = tiny_model(estimator=estimator, alpha=1.0, beta=1.0, gamma=1.0)
    x = mnist_images[:6]
    eps = np.random.default_rng(2).standard_normal((6, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    rec, *_, kl_at_z = numpy_terms(model, x, eps, estimator)
    loss = model.loss_terms({"x": x}, model(x, training=True))["loss"].numpy()
    np.testing.assert_allclose(loss, rec + kl_at_z, rtol=1e-5)


def test_the_kl_schedule_scales_the_whole_penalty(monkeypatch, mnist_images):
    model = tiny_model(kl_schedule="linear", kl_schedule_steps=100)
    x = mnist_images[:4]
    eps = np.random.default_rng(3).standard_normal((4, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    rec, mi, tc, dwkl, _ = numpy_terms(model, x, eps, "mss")
    model.steps_trained.assign(25)
    loss = model.loss_terms({"x": x}, model(x, training=True))["loss"].numpy()
    np.testing.assert_allclose(loss, rec + 0.25 * (mi + 6.0 * tc + dwkl), rtol=1e-5)


def test_the_dataset_size_comes_from_the_data():
    data = Data(splits={}, spec=DataSpec((28, 28, 1)), sizes={"train": 4750, "test": 10},
                source="test")
    assert data.spec.train_size == 4750
    from vae_zoo.config import RunConfig
    from vae_zoo.config import load_zoo_config
    config = RunConfig.from_dict(load_zoo_config("beta_tcvae"))
    assert "train_size" not in config.model.valid_args()
    assert config.model.build(data.spec).train_size == 4750
    with pytest.raises(UserInputError, match="did not give it"):
        config.model.build(DataSpec((28, 28, 1)))
    with pytest.raises(UserInputError, match="unknown estimator 'iwae'; choose one of mws, mss"):
        tiny_model(estimator="iwae")


class TestBetaTCVAE(ZooModelChecks):
    model_name = "beta_tcvae"
    check_export = False  # beta_vae's networks and endpoints, exported in TestBetaVAE
