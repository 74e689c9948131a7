"""InfoVAE: the loss against numpy by hand with fixed noise, the weights it refuses, and the
harness."""

import numpy as np
import pytest

from vae_zoo.errors import UserInputError
from vae_zoo.models.ae.ae_test import numpy_bernoulli_nll
from vae_zoo.models.mmd.wae_mmd_test import numpy_mmd
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise


def tiny_info_vae(**overrides):
    return build_zoo_model("info_vae", (28, 28, 1), network="dense", filters=None,
                           kernel_size=None, hidden_units=[8], latent_dim=3, **overrides)


@pytest.mark.parametrize("alpha, lam, kernel", [(0.0, 1000.0, "rbf"), (0.5, 2.0, "imq")])
def test_loss_is_reconstruction_plus_weighted_kl_and_mmd(monkeypatch, mnist_images, alpha, lam,
                                                         kernel):
    scales = [1.0] if kernel == "rbf" else [0.5, 1.0, 2.0]
    model = tiny_info_vae(alpha=alpha, lam=lam, kernel=kernel, kernel_scales=scales)
    x = mnist_images[:5]
    eps = np.random.default_rng(0).standard_normal((5, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))  # the posterior draw and the prior draws
    mu, log_var = (t.numpy().astype("float64") for t in model.encoder(x))
    z = mu + np.exp(0.5 * log_var) * eps
    logits = model.decoder(z.astype("float32")).numpy()
    reconstruction = numpy_bernoulli_nll(x, logits)
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1)
    penalty = numpy_mmd(z, eps, kernel, scales)

    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, model(x, training=True)).items()}
    np.testing.assert_allclose(terms["mmd"], np.full(5, penalty), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(terms["elbo"], -(reconstruction + kl), rtol=1e-5)
    expected = reconstruction + (1 - alpha) * kl + (alpha + lam - 1) * penalty
    np.testing.assert_allclose(terms["loss"], expected, rtol=1e-5)


@pytest.mark.parametrize("alpha, lam", [(0.0, 1e-3), (1.5, 1.0), (0.0, 0.0)])
def test_a_negative_weight_is_refused(alpha, lam):
    """pythae's defaults (alpha = 0, lbd = 1e-3) weigh the MMD by -0.999."""
    with pytest.raises(UserInputError, match="alpha"):
        tiny_info_vae(alpha=alpha, lam=lam)


def test_the_best_epoch_is_the_validation_elbo_and_the_density_applies(mnist_images):
    model = tiny_info_vae()
    assert model.selection_metric() == ("val_elbo", "max")
    weights = model.log_importance_weights(mnist_images[:3], 4).numpy()
    assert weights.shape == (4, 3) and np.isfinite(weights).all()


class TestInfoVAE(ZooModelChecks):
    model_name = "info_vae"
    check_export = False  # conv_vae's networks and endpoints: exported in vae_test.py
