"""PIWAE: the step's gradients against the two bounds computed by hand from the networks (the
decoder's from the M * K-sample IWAE bound, the encoder's from MIWAE's), and the harness."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise

K, M, BATCH, LATENT = 3, 2, 5, 3


def bounds_by_hand(model, x, eps):
    """Per example, the M * K-sample IWAE bound and the mean of the M K-sample bounds, from the
    encoder and decoder directly: z = mu + sigma * eps, Bernoulli logits, N(0, I) prior."""
    mu, log_var = model.encoder(x)
    z = mu + tf.exp(0.5 * log_var) * eps  # (M * K, batch, latent)
    logits = tf.reshape(model.decoder(tf.reshape(z, [-1, LATENT])), [M * K, BATCH, -1])
    pixels = tf.reshape(x, [1, BATCH, -1])
    log_px = tf.reduce_sum(pixels * logits - tf.nn.softplus(logits), axis=-1)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    log_pz = tf.reduce_sum(-0.5 * z**2 - half_log_2pi, axis=-1)
    log_qz = tf.reduce_sum(-0.5 * eps**2 - half_log_2pi - 0.5 * log_var, axis=-1)
    log_w = log_px + log_pz - log_qz
    iwae = tf.reduce_logsumexp(log_w, axis=0) - math.log(M * K)
    groups = tf.reshape(log_w, [M, K, BATCH])  # draw j * K + i is sample i of bound j
    miwae = tf.reduce_mean(tf.reduce_logsumexp(groups, axis=1) - math.log(K), axis=0)
    return iwae, miwae


@pytest.fixture
def model_and_draws(monkeypatch, mnist_images):
    keras.utils.set_random_seed(0)
    model = build_zoo_model("piwae", (28, 28, 1), hidden_units=[32], latent_dim=LATENT, k=K, m=M)
    eps = np.random.default_rng(0).standard_normal((M * K, BATCH, LATENT)).astype("float32")
    fixed_noise(monkeypatch, eps)
    return model, mnist_images[:BATCH], tf.constant(eps)


def test_terms_are_the_two_bounds(model_and_draws):
    model, x, eps = model_and_draws
    iwae, miwae = (b.numpy() for b in bounds_by_hand(model, x, eps))
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, model(x, training=True)).items()}
    np.testing.assert_allclose(terms["loss"], -iwae, rtol=1e-5)
    np.testing.assert_allclose(terms["encoder_loss"], -miwae, rtol=1e-5)
    np.testing.assert_allclose(terms["iwae_bound"], iwae, rtol=1e-5)
    np.testing.assert_allclose(terms["miwae_bound"], miwae, rtol=1e-5)
    assert (miwae < iwae).all()  # K < M * K draws a bound: MIWAE's is looser


def test_the_encoder_steps_on_miwae_and_the_decoder_on_iwae(model_and_draws):
    model, x, eps = model_and_draws
    encoder = model.encoder.trainable_variables
    decoder = model.decoder.trainable_variables
    assert len(encoder) + len(decoder) == len(model.trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
        iwae, miwae = (tf.reduce_mean(b) for b in bounds_by_hand(model, x, eps))
    by_hand = {"iwae": {"encoder": tape.gradient(iwae, encoder),
                        "decoder": tape.gradient(iwae, decoder)},
               "miwae": {"encoder": tape.gradient(miwae, encoder),
                         "decoder": tape.gradient(miwae, decoder)}}
    del tape

    before = {"encoder": [v.numpy() for v in encoder], "decoder": [v.numpy() for v in decoder]}
    model.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=False)
    model.train_step({"x": x})  # one SGD step at rate 1: each weight moves by its gradient
    step = {"encoder": [v.numpy() - b for v, b in zip(encoder, before["encoder"])],
            "decoder": [v.numpy() - b for v, b in zip(decoder, before["decoder"])]}

    def flat(arrays):
        return np.concatenate([np.ravel(a) for a in arrays])

    for network, bound, other in (("encoder", "miwae", "iwae"), ("decoder", "iwae", "miwae")):
        moved, right, wrong = (flat(step[network]), flat(by_hand[bound][network]),
                               flat(by_hand[other][network]))
        # The ascent step of its own bound (the loss is the negative bound, averaged over 5)...
        np.testing.assert_allclose(moved, right, rtol=1e-3, atol=1e-4 * np.abs(right).max(),
                                   err_msg=network)
        # ...which the other bound's gradient is not: the test tells the two apart.
        assert np.abs(wrong - right).max() > 1e-2 * np.abs(right).max(), network
    assert int(model.steps_trained) == 1


class TestPIWAE(ZooModelChecks):
    model_name = "piwae"
    model_overrides = {"k": 2, "m": 2}  # 4 draws, not 64: the harness checks the interface
    check_export = False  # dense_vae's networks and endpoints: exported in vae_test.py
