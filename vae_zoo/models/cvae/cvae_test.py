"""CVAE: the harness, the conditional ELBO against numpy on a tiny input, and the label's effect."""

import keras
import numpy as np
import pytest

from vae_zoo.errors import UserInputError
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise


def small_cvae(**overrides):
    return build_zoo_model("cvae", (28, 28, 1), num_classes=3, network="dense", filters=None,
                           kernel_size=None, hidden_units=[8], latent_dim=2, **overrides)


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_loss_is_the_negative_conditional_elbo_by_hand(monkeypatch, mnist_images, beta):
    """Everything recomputed in float64 from the weights: the one-hot joins the encoder features
    and z, z = mu + sigma * eps with fixed eps, Bernoulli log p(x|z, y) and the closed-form KL."""
    model = small_cvae(beta=beta)
    x, y = mnist_images[:4], np.array([0, 2, 1, 2])
    eps = np.random.default_rng(0).standard_normal((4, 2))
    fixed_noise(monkeypatch, eps.astype("float32"))

    one_hot = np.eye(3)[y]
    network = next(layer for layer in model.encoder.layers if isinstance(layer, keras.Model))
    features = network(x).numpy().astype("float64")  # the image features, before the label
    h = np.concatenate([features, one_hot], axis=1)
    head = model.encoder.get_layer("posterior")
    mean_w, mean_b = (w.numpy().astype("float64") for w in head.mean_dense.weights)
    var_w, var_b = (w.numpy().astype("float64") for w in head.log_var_dense.weights)
    mu, log_var = h @ mean_w + mean_b, np.clip(h @ var_w + var_b, -20.0, 20.0)
    z = mu + np.exp(0.5 * log_var) * eps
    logits = model.decoder(np.concatenate([z, one_hot], 1).astype("float32")).numpy()
    logits = logits.astype("float64")
    rec = -np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=-1)

    batch = {"x": x, "y": y}
    outputs = model(batch, training=True)
    np.testing.assert_allclose(outputs["z_mean"].numpy(), mu, rtol=1e-4, atol=1e-5)
    loss = float(model.compute_loss(x=batch, y_pred=outputs))
    np.testing.assert_allclose(loss, np.mean(rec + beta * kl), rtol=1e-5)
    terms = {k: v.numpy() for k, v in model.loss_terms(batch, outputs).items()}
    np.testing.assert_allclose(terms["reconstruction"], rec, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(terms["elbo"], -(rec + kl), rtol=1e-5)


def test_the_label_changes_decode_and_sample():
    model = small_cvae()
    z = np.random.default_rng(1).standard_normal((5, 2)).astype("float32")
    images = [model.decode(z, np.full(5, label)).numpy() for label in range(3)]
    assert np.abs(images[0] - images[1]).max() > 1e-4
    assert np.abs(images[1] - images[2]).max() > 1e-4
    # Without labels: E[x|z] = mean over the labels, since z and y are independent a priori.
    np.testing.assert_allclose(model.decode(z).numpy(), np.mean(images, axis=0), atol=1e-6)
    # sample(n) cycles the labels; explicit labels give the images of those labels.
    np.testing.assert_allclose(model.sample(3, seed=2).numpy(),
                               model.sample(3, seed=2, labels=[0, 1, 2]).numpy())
    assert np.abs(model.sample(3, seed=2, labels=[0, 0, 0]).numpy()
                  - model.sample(3, seed=2).numpy()).max() > 1e-4


def test_labels_are_required_where_the_model_conditions(mnist_images):
    with pytest.raises(UserInputError, match="the dataset has none"):
        build_zoo_model("cvae", (28, 28, 1), num_classes=None)
    with pytest.raises(UserInputError, match="needs a label y in every batch"):
        small_cvae()({"x": mnist_images[:2]})


class TestCVAE(ZooModelChecks):
    model_name = "cvae"


def test_the_class_picture_has_one_row_per_label():
    model = small_cvae()
    images, columns = model.family_pictures(per_class=4, seed=5)["samples_by_class"]
    assert images.shape == (3 * 4, 28, 28, 1) and columns == 4
    z = model.sample_latents(12, seed=5)
    for label in range(3):
        row = slice(4 * label, 4 * label + 4)
        np.testing.assert_allclose(images[row], model.decode(z[row], np.full(4, label)).numpy(),
                                   atol=1e-6)
