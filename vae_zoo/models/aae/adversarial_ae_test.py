"""AdversarialAE: both losses by hand (on given logits, and through the model with a
discriminator set by hand and fixed prior draws), the step applying each loss's gradient to its
own variables only, the export without the discriminator, and the harness (its checks for a
second optimizer)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.export import export_saved_model
from vae_zoo.models.aae import AdversarialAE
from vae_zoo.models.ae.ae_test import numpy_bernoulli_nll
from vae_zoo.models.ae.ae_test import tiny_ae
from vae_zoo.models.ae.ae_test import tiny_ae_by_hand
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import assert_sgd_step_lands_on
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise

WEIGHT = 3.0
# The discriminator, set by hand: 3 latents -> 5 ReLU units -> 1 logit.
W1 = np.array([[0.5, -1.0, 0.25, 0.0, 1.0], [1.5, 0.5, -0.75, 0.3, -0.2],
               [-0.4, 0.8, 0.6, -1.2, 0.1]])
B1 = np.array([0.1, -0.2, 0.3, 0.05, -0.1])
W2 = np.array([[1.0], [-2.0], [0.5], [1.5], [-0.7]])
B2 = np.array([0.2])


def tiny_model():
    """z = W x + b, logits = V z + c (no hidden layer), the discriminator above."""
    keras.utils.set_random_seed(0)
    model = tiny_ae("adversarial_ae", adversarial_weight=WEIGHT, discriminator_units=[5])
    hidden, logits = model.discriminator.layers
    hidden.kernel.assign(W1), hidden.bias.assign(B1)
    logits.kernel.assign(W2), logits.bias.assign(B2)
    return model


def numpy_discriminator(z):
    return (np.maximum(z @ W1 + B1, 0) @ W2 + B2)[:, 0]


def numpy_sigmoid(logits):
    return 1 / (1 + np.exp(-logits))


def numpy_losses(reconstruction, code_logits, prior_logits, weight):
    """The formulas with D = sigmoid of the logits: the autoencoder's loss
    reconstruction + weight * (-log D(z)) and D's 1/2 [-log D(z~) - log(1 - D(z))]."""
    adversarial = -np.log(numpy_sigmoid(code_logits))
    discriminator = 0.5 * (-np.log(numpy_sigmoid(prior_logits))
                           - np.log(1 - numpy_sigmoid(code_logits)))
    return reconstruction + weight * adversarial, adversarial, discriminator


def test_both_losses_on_given_tensors_equal_the_formulas():
    """`loss_terms` on given images, decoder logits, codes and discriminator logits."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 28, 28, 1)).astype("float32")
    outputs = {"x_params": rng.normal(size=(5, 28, 28, 1)).astype("float32"),
               "z": rng.normal(size=(5, 3)).astype("float32"),
               "prior_z": rng.normal(size=(5, 3)).astype("float32"),
               "code_logits": np.array([-3.0, -0.5, 0.0, 0.7, 4.0], "float32"),
               "prior_logits": np.array([2.5, -1.0, 0.3, 0.0, -4.0], "float32")}
    reconstruction = numpy_bernoulli_nll(x, outputs["x_params"])
    loss, adversarial, discriminator = numpy_losses(
        reconstruction, outputs["code_logits"].astype("float64"),
        outputs["prior_logits"].astype("float64"), 2.0)
    # Codes D calls real (logit > 0) fool it: a small generator loss, a large D loss on them.
    assert adversarial[4] < 0.02 < 3.0 < adversarial[0]
    model = tiny_ae("adversarial_ae", adversarial_weight=2.0)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(terms["adversarial_loss"], adversarial, rtol=1e-6)
    np.testing.assert_allclose(terms["discriminator_loss"], discriminator, rtol=1e-6)
    np.testing.assert_allclose(terms["loss"], loss, rtol=1e-6)
    np.testing.assert_allclose(model.discriminator_loss(outputs).numpy(), discriminator,
                               rtol=1e-6)
    # Large logits stay finite (softplus, not log(sigmoid)).
    extreme = AdversarialAE.adversarial_terms({"code_logits": tf.constant([-200.0, 200.0]),
                                               "prior_logits": tf.constant([-200.0, 200.0])})
    np.testing.assert_allclose(extreme["adversarial_loss"].numpy(), [200.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(extreme["discriminator_loss"].numpy(), [100.0, 100.0], rtol=1e-6)


def test_the_model_losses_by_hand_with_fixed_prior_draws(monkeypatch, mnist_images):
    model = tiny_model()
    x = mnist_images[:5]
    eps = np.random.default_rng(0).standard_normal((5, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    z, reconstruction = tiny_ae_by_hand(model, x)
    code_logits, prior_logits = numpy_discriminator(z), numpy_discriminator(eps)
    loss, adversarial, discriminator = numpy_losses(reconstruction, code_logits, prior_logits,
                                                    WEIGHT)
    assert np.ptp(code_logits) > 0.1 and np.ptp(prior_logits) > 0.1  # D is not constant here

    outputs = model(x, training=True)
    np.testing.assert_allclose(outputs["prior_z"].numpy(), eps, rtol=1e-6)
    np.testing.assert_allclose(outputs["code_logits"].numpy(), code_logits, rtol=1e-4, atol=1e-5)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(terms["adversarial_loss"], adversarial, rtol=1e-4)
    np.testing.assert_allclose(terms["discriminator_loss"], discriminator, rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], loss, rtol=1e-5)

    # The step logs the global-batch means of both objectives.
    model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    logs = {k: float(v) for k, v in model.train_step({"x": tf.constant(x)}).items()}
    np.testing.assert_allclose(logs["loss"], loss.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["discriminator_loss"], discriminator.mean(), rtol=1e-4)
    np.testing.assert_allclose(logs["adversarial_loss"], adversarial.mean(), rtol=1e-4)


def test_the_step_takes_each_loss_gradient_on_its_own_variables_at_the_same_weights(
        monkeypatch, mnist_images):
    """One SGD step: the autoencoder moves by -lr * the gradient of its loss (reconstruction +
    weight * generator loss, through D), D by -lr * the gradient of D's loss, both taken at the
    weights before the step. D trained on the autoencoder's loss (to be fooled) or the encoder on
    D's (to be caught) would show here."""
    x = mnist_images[:8]
    fixed_noise(monkeypatch, np.random.default_rng(1).standard_normal((8, 3)).astype("float32"))
    model = tiny_model()
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(x, training=True)
        terms = model.loss_terms({"x": x}, outputs)
        autoencoder, discriminator, adversarial = (
            tf.reduce_mean(terms[k]) for k in ("loss", "discriminator_loss", "adversarial_loss"))
    owned = model.optimizer_variables()
    expected = {}
    for name, loss, other in (("optimizer", autoencoder, discriminator),
                              ("discriminator_optimizer", discriminator, autoencoder)):
        gradients = tape.gradient(loss, owned[name])
        assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients), name
        expected.update({id(v): v.numpy() - 0.05 * g.numpy()
                         for v, g in zip(owned[name], gradients)})
    # The generator loss reaches the encoder through D, so the step's encoder change has it.
    adversarial_gradient = tape.gradient(adversarial, model.encoder.trainable_variables[0])
    assert float(tf.reduce_max(tf.abs(adversarial_gradient))) > 0
    del tape

    assert_sgd_step_lands_on(model, x, expected, owned)


def test_the_export_holds_no_discriminator(tmp_path):
    model = tiny_model()
    version = export_saved_model(model, tmp_path)
    saved = tf.train.list_variables(str(version / "variables" / "variables"))
    shapes = sorted(tuple(shape) for name, shape in saved if "VARIABLE_VALUE" in name)
    serving = [v for v in model.trainable_weights if not v.path.startswith("discriminator/")]
    assert len(serving) < len(model.trainable_weights)  # D's 4 weights left out below
    assert shapes == sorted(tuple(v.shape) for v in serving)  # the encoder's and decoder's only
    assert not {(3, 5), (5,), (5, 1), (1,)} & set(shapes)
    assert not any("discriminator" in name for name, _ in saved)
    loaded = tf.saved_model.load(str(version))
    assert sorted(loaded.signatures) == sorted(model.serving_endpoints())


def test_defaults_are_pythaes_and_bad_arguments_are_refused():
    model = build_zoo_model("adversarial_ae", (28, 28, 1))
    assert model.adversarial_weight == 1.0 and model.discriminator_units == [256]
    assert model.selection_metric() == ("val_reconstruction", "min")
    assert not model.capabilities.has_density and not model.capabilities.batch_dependent_objective
    optimizers = model.make_optimizers(3e-3)
    autoencoder, discriminator = optimizers["optimizer"], optimizers["discriminator_optimizer"]
    assert float(autoencoder.learning_rate) == float(discriminator.learning_rate) == (
        np.float32(3e-3))
    assert (discriminator.beta_1, discriminator.beta_2) == (0.9, 0.999)
    told = build_zoo_model("adversarial_ae", (28, 28, 1), discriminator_learning_rate=1e-4)
    assert float(told.make_optimizers(3e-3)["discriminator_optimizer"].learning_rate) == (
        np.float32(1e-4))
    with pytest.raises(UserInputError, match="adversarial_weight"):
        tiny_ae("adversarial_ae", adversarial_weight=-1.0)
    with pytest.raises(UserInputError, match="discriminator_units"):
        tiny_ae("adversarial_ae", discriminator_units=[])


class TestAdversarialAE(ZooModelChecks):
    model_name = "adversarial_ae"
    check_export = False  # the AE's networks and endpoints: exported in TestAE
