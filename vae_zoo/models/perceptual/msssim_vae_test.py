"""msssim_vae: the loss against weight * (1 - tf.image.ssim_multiscale) + beta * KL computed
apart on given tensors, a perfect reconstruction's zero term, the size rule, and the harness."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.perceptual.msssim_vae import scale_sizes
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import structured_images

WEIGHT, BETA = 50.0, 2.0


def given_outputs(x_params, seed=0):
    """What the model's call returns, chosen by hand: logits and a posterior for 4 examples."""
    rng = np.random.default_rng(seed)
    return {"x_params": tf.constant(x_params, tf.float32),
            "z_mean": tf.constant(rng.normal(size=(4, 16)), tf.float32),
            "z_log_var": tf.constant(rng.normal(scale=0.5, size=(4, 16)), tf.float32)}


def closed_form_kl(outputs):
    mu, log_var = (outputs[k].numpy().astype("float64") for k in ("z_mean", "z_log_var"))
    return 0.5 * np.sum(np.exp(log_var) + mu**2 - 1.0 - log_var, axis=-1)


@pytest.fixture
def model():
    return build_zoo_model("msssim_vae", (28, 28, 1), reconstruction_weight=WEIGHT, beta=BETA)


def test_loss_is_weighted_one_minus_ms_ssim_plus_beta_kl(model, mnist_images):
    x = mnist_images[:4]
    logits = np.random.default_rng(1).normal(size=x.shape).astype("float32")
    outputs = given_outputs(logits)
    ms_ssim = tf.image.ssim_multiscale(x, tf.sigmoid(logits), max_val=1.0,
                                       power_factors=(0.0711, 0.4530, 0.4759), filter_size=7,
                                       filter_sigma=1.5).numpy()
    kl = closed_form_kl(outputs)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, outputs).items()}
    assert (ms_ssim < 0.5).all()  # noise against digits: far from a perfect match
    np.testing.assert_allclose(terms["ms_ssim"], ms_ssim, rtol=1e-5)
    np.testing.assert_allclose(terms["reconstruction"], WEIGHT * (1 - ms_ssim), rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"], WEIGHT * (1 - ms_ssim) + BETA * kl, rtol=1e-5)


def test_a_perfect_reconstruction_costs_only_the_kl(model):
    x = np.clip(structured_images(4, (28, 28, 1)), 0.02, 0.98)
    outputs = given_outputs(np.log(x / (1 - x)))  # logits whose pixel probabilities are x
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["ms_ssim"], 1.0, atol=1e-5)
    np.testing.assert_allclose(terms["reconstruction"], 0.0, atol=WEIGHT * 1e-5)
    np.testing.assert_allclose(terms["loss"], BETA * closed_form_kl(outputs), rtol=1e-5)
    shifted = {**outputs, "x_params": tf.roll(outputs["x_params"], 3, axis=2)}
    assert (model.loss_terms({"x": x}, shifted)["reconstruction"].numpy() > 1.0).all()


def test_a_channel_scored_zero_gets_no_gradient_not_nan():
    """tf.image.ssim_multiscale's own gradient is NaN for a channel clipped to 0 (an inverted
    one); the model's score is the same value with a finite gradient, zero on that channel."""
    model = build_zoo_model("msssim_vae", (32, 32, 3))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 32, 32, 3)).astype("float32")
    noisy = np.clip(x + 0.1 * rng.normal(size=x.shape), 0, 1).astype("float32")
    noisy[1, ..., 1] = 1 - x[1, ..., 1]  # one channel inverted
    noisy[2] = 1 - x[2]  # every channel inverted
    x_hat = tf.Variable(noisy)
    with tf.GradientTape(persistent=True) as tape:
        ours = model.ms_ssim(x, x_hat)
        theirs = tf.image.ssim_multiscale(x, x_hat, max_val=1.0,
                                          power_factors=(0.0711, 0.4530, 0.4759),
                                          filter_size=7, filter_sigma=1.5)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5)
    assert ours.numpy()[2] == 0.0 and ours.numpy()[1] > 0.1
    gradient, nan = tape.gradient(ours, x_hat).numpy(), tape.gradient(theirs, x_hat).numpy()
    assert np.isnan(nan[1:]).any() and np.isfinite(gradient).all()
    np.testing.assert_array_equal(gradient[2], 0.0)
    np.testing.assert_array_equal(gradient[1, ..., 1], 0.0)
    np.testing.assert_allclose(gradient[0], nan[0], rtol=1e-4, atol=1e-7)
    assert np.abs(gradient[1, ..., 0]).max() > 1e-4


def test_images_too_small_for_the_scales_are_refused():
    assert scale_sizes(28, 3) == [28, 14, 7] and scale_sizes(25, 3) == [25, 13, 7]
    build_zoo_model("msssim_vae", (25, 25, 1))  # the smallest side the defaults take
    for shape, overrides in [((24, 24, 1), {}), ((28, 28, 1), {"filter_size": 11}),
                             ((28, 28, 1), {"power_factors": [0.2] * 5})]:
        with pytest.raises(UserInputError, match="too small for MS-SSIM"):
            build_zoo_model("msssim_vae", shape, **overrides)
    build_zoo_model("msssim_vae", (24, 24, 1), power_factors=[0.5, 0.5])  # 24 -> 12: fits
    with pytest.raises(UserInputError, match="reconstruction_weight"):
        build_zoo_model("msssim_vae", (28, 28, 1), reconstruction_weight=0)


def test_it_declares_no_density(model, mnist_images):
    assert not model.capabilities.has_density
    assert "elbo" not in model.metric_names
    assert model.selection_metric() == ("val_loss", "min")
    with pytest.raises(NotImplementedError, match="no density"):
        model.log_importance_weights(mnist_images[:2], 3)


class TestMSSSIMVAE(ZooModelChecks):
    model_name = "msssim_vae"
    check_export = False  # conv_vae's networks and endpoints: exported in vae_test.py
