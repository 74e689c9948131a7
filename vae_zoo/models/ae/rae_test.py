"""RAE: both penalties against numpy by hand (the gradient penalty in closed form for a linear
decoder), that they train the weights they should, and the harness for rae_l2 and rae_gp."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.ae.ae_test import numpy_bernoulli_nll
from vae_zoo.models.ae.ae_test import tiny_ae
from vae_zoo.testing.harness import ZooModelChecks


def linear_parts(model, x):
    """z = W x + b and the decoder's logits V z + c of the tiny AE, in float64."""
    (w, b), (v, c) = model.encoder.get_weights(), model.decoder.get_weights()
    z = x.reshape(len(x), -1).astype("float64") @ w + b
    return z, v.astype("float64"), c.astype("float64")


def numpy_gradient_penalty(z, v, c):
    """||grad_z ||s(z)||^2||^2 per example for s = sigmoid(V z + c): the gradient is
    V (2 s * s (1 - s)), by the chain rule."""
    s = 1 / (1 + np.exp(-(z @ v + c)))
    gradient = (2 * s * s * (1 - s)) @ v.T  # (batch, latent)
    return np.sum(gradient**2, axis=1)


def test_l2_loss_by_hand_and_its_gradient_is_weight_decay_on_the_decoder(mnist_images):
    model = tiny_ae("rae_l2", code_weight=0.3, decoder_weight=0.01)
    x = mnist_images[:5]
    z, v, c = linear_parts(model, x)
    squares = np.sum(v**2) + np.sum(c**2)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, model(x)).items()}
    reconstruction = numpy_bernoulli_nll(x, (z @ v + c).reshape(x.shape))
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-5)
    np.testing.assert_allclose(terms["code_penalty"], 0.5 * np.sum(z**2, axis=1), rtol=1e-4)
    np.testing.assert_allclose(terms["decoder_penalty"], np.full(5, squares), rtol=1e-5)
    np.testing.assert_allclose(
        terms["loss"], reconstruction + 0.15 * np.sum(z**2, axis=1) + 0.01 * squares, rtol=1e-5)

    # The penalty's gradient: 2 * 0.01 * theta on each decoder weight, nothing on the encoder's.
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(x, training=True)
        with_l2 = tf.reduce_mean(model.loss_terms({"x": x}, outputs)["loss"])
        model.decoder_weight = 0.0
        without = tf.reduce_mean(model.loss_terms({"x": x}, outputs)["loss"])
    for variable in model.decoder.trainable_weights:
        difference = tape.gradient(with_l2, variable) - tape.gradient(without, variable)
        np.testing.assert_allclose(difference.numpy(), 0.02 * variable.numpy(), rtol=1e-4,
                                   atol=1e-7)
    for variable in model.encoder.trainable_weights:
        np.testing.assert_allclose(tape.gradient(with_l2, variable).numpy(),
                                   tape.gradient(without, variable).numpy(), rtol=1e-6)


def test_gradient_penalty_by_hand_and_trained_through_double_backpropagation(mnist_images):
    model = tiny_ae("rae_gp", code_weight=0.2, decoder_weight=0.5)
    x = mnist_images[:5]
    z, v, c = linear_parts(model, x)
    penalty = numpy_gradient_penalty(z, v, c)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, model(x)).items()}
    np.testing.assert_allclose(terms["decoder_penalty"], penalty, rtol=1e-4)
    reconstruction = numpy_bernoulli_nll(x, (z @ v + c).reshape(x.shape))
    np.testing.assert_allclose(
        terms["loss"], reconstruction + 0.1 * np.sum(z**2, axis=1) + 0.5 * penalty, rtol=1e-5)

    # The penalty's gradient wrt the decoder's bias c against central differences of the closed
    # form: the inner gradient must stay differentiable (no stop_gradient, a persistent graph).
    bias = model.decoder.trainable_weights[1]
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(model(x, training=True)["decoder_gradient_norm"])
    gradient = tape.gradient(total, bias).numpy()
    assert np.abs(gradient).max() > 0
    h, numeric = 1e-4, np.zeros_like(c)
    for i in np.argsort(-np.abs(gradient))[:20]:  # the pixels the penalty depends on most
        up, down = c.copy(), c.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (numpy_gradient_penalty(z, v, up).sum()
                      - numpy_gradient_penalty(z, v, down).sum()) / (2 * h)
        np.testing.assert_allclose(gradient[i], numeric[i], rtol=2e-3, atol=1e-6)


def test_bad_penalties_are_refused():
    with pytest.raises(UserInputError, match="decoder_penalty"):
        tiny_ae("rae_l2", decoder_penalty="spectral")
    with pytest.raises(UserInputError, match=">= 0"):
        tiny_ae("rae_l2", code_weight=-1.0)


class TestRAEL2(ZooModelChecks):
    model_name = "rae_l2"
    check_export = False  # the AE's networks and endpoints: exported in TestAE


class TestRAEGP(ZooModelChecks):
    model_name = "rae_gp"
    check_export = False
