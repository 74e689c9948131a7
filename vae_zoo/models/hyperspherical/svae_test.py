"""S-VAE: the von Mises-Fisher draws against their closed-form moments, gradients through the
sampler, the loss by hand (Bernoulli log-likelihood + the vMF-to-uniform KL from Bessel
functions), the IW NLL's terms, and the harness."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import special

from vae_zoo.errors import UserInputError
from vae_zoo.models.hyperspherical import von_mises_fisher_draws
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model


def mean_resultant(d, kappa):
    """E[mu . z] under vMF(mu, kappa) on S^(d-1): A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa)."""
    return special.ive(d / 2, kappa) / special.ive(d / 2 - 1, kappa)


def kl_to_uniform(d, kappa):
    """KL(vMF(mu, kappa) || uniform on S^(d-1)), by hand: E_q[log q] + log |S^(d-1)|."""
    log_normalizer = ((d / 2 - 1) * np.log(kappa) - (d / 2) * np.log(2 * np.pi)
                      - (np.log(special.ive(d / 2 - 1, kappa)) + kappa))
    log_area = np.log(2.0) + (d / 2) * np.log(np.pi) - special.gammaln(d / 2)
    return kappa * mean_resultant(d, kappa) + log_normalizer + log_area


@pytest.mark.parametrize("d, kappa", [(2, 1.0), (3, 10.0), (10, 5.0), (10, 200.0), (64, 50.0)])
def test_draws_are_unit_vectors_with_the_closed_form_mean_resultant(d, kappa):
    n = 20000
    mean = tf.math.l2_normalize(tf.random.stateless_normal([1, d], [1, d]), -1)
    z = von_mises_fisher_draws(tf.tile(mean, [n, 1]), tf.fill([n], kappa), seed=[5, d]).numpy()
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    along = z @ mean.numpy()[0]
    # the standard error of the mean of mu . z is below 1 / sqrt(n): 5 of them
    assert abs(along.mean() - mean_resultant(d, kappa)) < 5 / np.sqrt(n)
    # the part orthogonal to mu has no preferred direction
    orthogonal = z - along[:, None] * mean.numpy()
    assert np.abs(orthogonal.mean(axis=0)).max() < 5 / np.sqrt(n)


def test_the_same_seed_draws_the_same_codes_and_gradients_reach_mean_and_kappa():
    mean = tf.Variable(tf.math.l2_normalize(tf.constant([[1.0, 2.0, 0.5, -1.0]]), -1))
    kappa = tf.Variable([4.0])
    first = von_mises_fisher_draws(mean, kappa, seed=[1, 2])
    np.testing.assert_array_equal(first.numpy(), von_mises_fisher_draws(mean, kappa, [1, 2]).numpy())
    target = tf.constant([[0.0, 0.0, 0.0, 1.0]])
    with tf.GradientTape() as tape:
        z = von_mises_fisher_draws(tf.tile(mean, [256, 1]), tf.tile(kappa, [256]), seed=[3, 4])
        loss = -tf.reduce_mean(tf.reduce_sum(z * target, -1))
    grad_mean, grad_kappa = tape.gradient(loss, [mean, kappa])
    assert np.all(np.isfinite(grad_mean.numpy())) and np.abs(grad_mean.numpy()).max() > 1e-3
    # E[mu . z] grows with kappa, so the gradient of -E[target . z] with target far from mu is
    # not zero either; its sign follows target . mu (< 0 here: concentrating moves away)
    assert float(grad_kappa[0]) != 0.0 and np.isfinite(float(grad_kappa[0]))


def test_loss_is_bernoulli_reconstruction_plus_the_vmf_kl_to_the_uniform_prior(mnist_images):
    model = build_zoo_model("svae", (28, 28, 1))
    x = mnist_images[:8]
    outputs = model(x)
    logits = outputs["x_params"].numpy().astype("float64")
    p = np.clip(1 / (1 + np.exp(-logits)), 1e-12, 1 - 1e-12)
    reconstruction = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    kl = kl_to_uniform(model.latent_dim, outputs["kappa"].numpy().astype("float64"))
    loss = float(model.compute_loss(x=x, y_pred=outputs))
    np.testing.assert_allclose(loss, np.mean(reconstruction + kl), rtol=1e-4)
    terms = {name: float(t.result()) for name, t in model.term_trackers.items()}
    np.testing.assert_allclose(terms["kl"], kl.mean(), rtol=1e-4)
    assert np.all(outputs["kappa"].numpy() > 1.0)
    np.testing.assert_allclose(np.linalg.norm(outputs["z"].numpy(), axis=1), 1.0, atol=1e-5)


def test_importance_weights_score_draws_by_the_prior_and_posterior_densities(mnist_images,
                                                                             monkeypatch):
    model = build_zoo_model("svae", (28, 28, 1))
    x = mnist_images[:4]
    weights = model.log_importance_weights(x, 7).numpy()
    assert weights.shape == (7, 4) and np.all(np.isfinite(weights))
    # Without log p(x|z), a weight is log p(z) - log q(z|x) of a draw z ~ q: its mean over
    # draws is -KL(q || p), known in closed form.
    monkeypatch.setattr(model, "draws_log_likelihood", lambda x, z: tf.zeros(tf.shape(z)[:2]))
    k = 4000
    ratios = model.log_importance_weights(x, k).numpy()
    kl = kl_to_uniform(model.latent_dim, model(x)["kappa"].numpy().astype("float64"))
    standard_error = ratios.std(axis=0) / np.sqrt(k)
    assert np.all(np.abs(ratios.mean(axis=0) + kl) < 5 * standard_error + 1e-3)


def test_latent_dim_below_two_is_refused():
    with pytest.raises(UserInputError, match="latent_dim >= 2"):
        build_zoo_model("svae", (28, 28, 1), latent_dim=1)


class TestSVAE(ZooModelChecks):
    model_name = "svae"


def test_codes_of_a_fitted_sampler_are_put_back_on_the_sphere():
    model = build_zoo_model("svae", (28, 28, 1))
    codes = np.random.default_rng(0).normal(size=(5, model.latent_dim)).astype("float32") * 3
    np.testing.assert_allclose(np.linalg.norm(model.onto_latent_space(codes), axis=1), 1, rtol=1e-5)
    plain = build_zoo_model("conv_vae", (28, 28, 1))
    np.testing.assert_array_equal(plain.onto_latent_space(codes), codes)
