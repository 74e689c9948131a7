"""The VAE family: the harness, and the loss against its closed form, computed by hand.

The loss is exactly the per-example negative ELBO (or its beta/capacity variant), batch-averaged.
"""

import keras
import numpy as np
import pytest

from vae_zoo.distributions import kl_to_standard_normal
from vae_zoo.export import QUANTIZATIONS
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model


def _manual_terms(model, x, outputs):
    logits = outputs["x_params"].numpy().astype("float64")
    p = 1 / (1 + np.exp(-logits))
    p = np.clip(p, 1e-12, 1 - 1e-12)
    log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    mu, log_var = outputs["z_mean"].numpy(), outputs["z_log_var"].numpy()
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=-1)
    return -log_px, kl


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_loss_is_reconstruction_plus_beta_kl_averaged(mnist_images, beta):
    model = build_zoo_model("conv_vae", (28, 28, 1), beta=beta)
    x = mnist_images[:8]
    outputs = model(x)
    loss = float(model.compute_loss(x=x, y_pred=outputs))
    rec, kl = _manual_terms(model, x, outputs)
    np.testing.assert_allclose(loss, np.mean(rec + beta * kl), rtol=1e-4)
    results = {name: float(t.result()) for name, t in model.term_trackers.items()}
    np.testing.assert_allclose(results["loss"], np.mean(rec + beta * kl), rtol=1e-4)
    np.testing.assert_allclose(results["reconstruction"], rec.mean(), rtol=1e-4)
    np.testing.assert_allclose(results["kl"], kl.mean(), rtol=1e-4)
    np.testing.assert_allclose(results["elbo"], -(rec + kl).mean(), rtol=1e-4)


def test_capacity_objective_follows_its_schedule(mnist_images):
    model = build_zoo_model("beta_vae", (28, 28, 1), capacity=True, gamma=10.0,
                            capacity_max=20.0, capacity_steps=100)
    assert float(model.current_capacity()) == 0.0  # a new model: step 0
    x = mnist_images[:8]
    for step, capacity in ((0, 0.0), (25, 5.0), (100, 20.0), (1000, 20.0)):
        model.steps_trained.assign(step)
        np.testing.assert_allclose(float(model.current_capacity()), capacity, rtol=1e-6)
        outputs = model(x)
        rec, kl = _manual_terms(model, x, outputs)
        loss = float(model.compute_loss(x=x, y_pred=outputs))
        np.testing.assert_allclose(loss, rec.mean() + 10.0 * abs(kl.mean() - capacity), rtol=1e-4)
    assert model.schedule_values() == {"gamma": 10.0, "capacity": 20.0}


def test_capacity_penalises_the_batch_mean_kl_not_each_examples(mnist_images):
    """gamma * |mean KL - C| (disentanglement_lib's AnnealedVAE), not mean |KL(x) - C|: with C
    between the examples' KLs the two differ, and only the first lets the KL vary with x."""
    model = build_zoo_model("beta_vae", (28, 28, 1), capacity=True, gamma=1000.0,
                            capacity_steps=100)
    x = mnist_images[:8]
    outputs = model(x)
    rec, kl = _manual_terms(model, x, outputs)
    model.capacity_max = float(np.median(kl))  # C with examples on both sides
    model.steps_trained.assign(100)
    penalty = float(model.compute_loss(x=x, y_pred=outputs)) - rec.mean()
    per_example = 1000.0 * np.abs(kl - model.capacity_max).mean()
    batch_mean = 1000.0 * abs(kl.mean() - model.capacity_max)
    assert per_example - batch_mean > 0.1 * per_example  # the case tells the forms apart
    np.testing.assert_allclose(penalty, batch_mean, rtol=0.01, atol=0.01)


def test_capacity_rises_with_the_models_own_step_counter_during_training(mnist_images):
    model = build_zoo_model("beta_vae", (28, 28, 1), capacity=True, capacity_max=20.0,
                            capacity_steps=8)
    model.compile(optimizer=keras.optimizers.SGD(1e-6), jit_compile=False)
    model.fit(mnist_images[:64], batch_size=16, epochs=1, verbose=0)
    assert int(model.steps_trained) == 4
    np.testing.assert_allclose(float(model.current_capacity()), 10.0, rtol=1e-6)


def test_kl_term_uses_tfp_and_matches_closed_form_on_model_outputs(mnist_images):
    model = build_zoo_model("dense_vae", (28, 28, 1))
    outputs = model(mnist_images[:4])
    kl = model.loss_terms({"x": mnist_images[:4]}, outputs)["kl"]
    _, expected = _manual_terms(model, mnist_images[:4], outputs)
    np.testing.assert_allclose(kl.numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        kl.numpy(), kl_to_standard_normal(outputs["z_mean"], outputs["z_log_var"]).numpy())


class TestConvVAE(ZooModelChecks):
    model_name = "conv_vae"
    tflite_modes = QUANTIZATIONS


class TestDenseVAE(ZooModelChecks):
    model_name = "dense_vae"
    tflite_modes = QUANTIZATIONS
