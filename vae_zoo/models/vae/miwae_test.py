"""MIWAE and CIWAE: their bounds against numpy from the same draws (IWAE's test's weights), the
limits where they are IWAE or the ELBO, and the harness."""

import numpy as np
import pytest

from vae_zoo.errors import UserInputError
from vae_zoo.models.vae.iwae_test import log_mean_exp
from vae_zoo.models.vae.iwae_test import numpy_log_weights
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise


def terms_and_weights(monkeypatch, mnist_images, name, draws, **overrides):
    model = build_zoo_model(name, (28, 28, 1), hidden_units=[32], latent_dim=3, **overrides)
    x = mnist_images[:5]
    eps = np.random.default_rng(draws).standard_normal((draws, 5, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    log_px, log_ratio, _ = numpy_log_weights(model, x, eps)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, model(x)).items()}
    return terms, log_px + log_ratio


@pytest.mark.parametrize("k, m", [(3, 2), (1, 4), (4, 1)])
def test_miwae_is_the_mean_of_m_k_sample_bounds(monkeypatch, mnist_images, k, m):
    terms, log_w = terms_and_weights(monkeypatch, mnist_images, "miwae", k * m, k=k, m=m)
    groups = log_w.reshape(m, k, 5)  # draw j * k + i is sample i of bound j
    bound = np.mean([log_mean_exp(g) for g in groups], axis=0)
    np.testing.assert_allclose(terms["miwae_bound"], bound, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], -bound, rtol=1e-5)
    np.testing.assert_allclose(terms["iwae_bound"], log_mean_exp(log_w), rtol=1e-5)
    if k == 1:  # the ELBO averaged over M draws
        np.testing.assert_allclose(bound, log_w.mean(axis=0), rtol=1e-5)
    if m == 1:  # IWAE's bound
        np.testing.assert_allclose(bound, log_mean_exp(log_w), rtol=1e-5)
    if k > 1 and m > 1:  # between the ELBO and the M * K-sample bound
        assert (log_w.mean(axis=0) < bound).all() and (bound < log_mean_exp(log_w)).all()


@pytest.mark.parametrize("combination", [0.0, 0.3, 1.0])
def test_ciwae_is_the_convex_combination_of_elbo_and_iwae(monkeypatch, mnist_images, combination):
    terms, log_w = terms_and_weights(monkeypatch, mnist_images, "ciwae", 4, k=4,
                                     combination=combination)
    bound = combination * log_w.mean(axis=0) + (1 - combination) * log_mean_exp(log_w)
    np.testing.assert_allclose(terms["ciwae_bound"], bound, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], -bound, rtol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(UserInputError, match="combination"):
        build_zoo_model("ciwae", (28, 28, 1), combination=1.5)
    with pytest.raises(UserInputError, match="m must"):
        build_zoo_model("miwae", (28, 28, 1), m=0)


class TestMIWAE(ZooModelChecks):
    model_name = "miwae"
    model_overrides = {"k": 2, "m": 2}  # 4 draws, not 64: the harness checks the interface
    check_export = False  # dense_vae's networks and endpoints: exported in vae_test.py


class TestCIWAE(ZooModelChecks):
    model_name = "ciwae"
    model_overrides = {"k": 4}
    check_export = False
