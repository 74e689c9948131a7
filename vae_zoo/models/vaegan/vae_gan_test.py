"""VAEGAN: the three losses by hand (a tiny model whose discriminator is set by hand and
computed in numpy, fixed prior draws), each optimizer stepping by its own loss's gradient only,
the equilibrium gating skipping updates entirely (on one device and on two replicas), the export
without the discriminator, bad arguments, and the harness (its checks for several optimizers)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.export import export_saved_model
from vae_zoo.models.vaegan import equilibrium_gates
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import assert_sgd_step_lands_on
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise
from vae_zoo.testing.harness import structured_images

SHAPE = (8, 8, 1)
SCALE = 0.3
NAMES = ("optimizer", "decoder_optimizer", "discriminator_optimizer")
LOSSES = {"optimizer": "encoder_loss", "decoder_optimizer": "decoder_loss",
          "discriminator_optimizer": "discriminator_loss"}


def tiny_model(**overrides):
    """Dense networks on 8x8 images, latent 2; a discriminator of two stride-2 convs (2 and 3
    channels) whose first block is Dis_l, its weights drawn here (numpy_discriminator)."""
    keras.utils.set_random_seed(0)
    args = dict(network="dense", filters=None, kernel_size=None, hidden_units=[8], latent_dim=2,
                adversarial_loss_scale=SCALE, discriminator_filters=[2, 3],
                reconstruction_layer=0)
    model = build_zoo_model("vae_gan", SHAPE, **{**args, **overrides})
    rng = np.random.default_rng(1)
    model.discriminator.set_weights(
        [0.7 * rng.standard_normal(w.shape) for w in model.discriminator.get_weights()])
    return model


def numpy_conv(x, kernel, bias):
    """A stride-2 'same' convolution as TensorFlow pads it (the extra row/column at the end)."""
    n, h, w, _ = x.shape
    k = kernel.shape[0]
    oh, ow = -(-h // 2), -(-w // 2)
    ph, pw = max((oh - 1) * 2 + k - h, 0), max((ow - 1) * 2 + k - w, 0)
    padded = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, oh, ow, kernel.shape[-1]))
    for i in range(oh):
        for j in range(ow):
            patch = padded[:, 2 * i:2 * i + k, 2 * j:2 * j + k, :]
            out[:, i, j] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2])) + bias
    return out


def numpy_discriminator(model, images):
    """`(Dis_l(x), logit)` in float64: leaky ReLU (slope 0.2) convs, the first block's features,
    the logit on the last block's."""
    k0, b0, k1, b1, w, c = (a.astype("float64") for a in model.discriminator.get_weights())
    h0 = numpy_conv(images, k0, b0)
    h0 = np.where(h0 > 0, h0, 0.2 * h0)
    h1 = numpy_conv(h0, k1, b1)
    h1 = np.where(h1 > 0, h1, 0.2 * h1)
    return h0.reshape(len(images), -1), (h1.reshape(len(images), -1) @ w + c)[:, 0]


def numpy_sigmoid(a):
    return 1 / (1 + np.exp(-a))


def losses_by_hand(model, x, eps):
    """Every term, in float64, from the model's encoder and decoder outputs (Keras) and the
    rest by hand: z = mu + sigma eps, z_p = eps (fixed_noise draws both with eps)."""
    mu, log_var = (t.numpy().astype("float64") for t in model.encoder(x))
    z = mu + np.exp(0.5 * log_var) * eps
    logits = model.decoder(z.astype("float32")).numpy().astype("float64")
    prior_logits = model.decoder(eps.astype("float32")).numpy().astype("float64")
    real_f, real_l = numpy_discriminator(model, x.astype("float64"))
    rec_f, _ = numpy_discriminator(model, numpy_sigmoid(logits))
    _, prior_l = numpy_discriminator(model, numpy_sigmoid(prior_logits))
    feature = np.sum((real_f - rec_f) ** 2, axis=1)
    kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var, axis=1)
    real_bce = -np.log(numpy_sigmoid(real_l))  # BCE(D(x), real)
    prior_bce = -np.log(1 - numpy_sigmoid(prior_l))  # BCE(D(x_p), fake)
    discriminator = real_bce + prior_bce
    encoder = kl + feature
    decoder = (1 - SCALE) * feature - SCALE * discriminator
    reconstruction = -np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    return {"encoder_loss": encoder, "decoder_loss": decoder,
            "discriminator_loss": discriminator, "feature_reconstruction": feature, "kl": kl,
            "real_bce": real_bce, "prior_bce": prior_bce, "reconstruction": reconstruction,
            "loss": encoder + decoder + discriminator}


def test_the_three_losses_by_hand(monkeypatch):
    model = tiny_model()
    x = structured_images(5, SHAPE)
    eps = np.random.default_rng(0).standard_normal((5, 2))
    fixed_noise(monkeypatch, eps.astype("float32"))
    expected = losses_by_hand(model, x, eps)
    # The discriminator is not constant here and the feature term is not negligible.
    assert np.ptp(expected["real_bce"]) > 0.05 and np.ptp(expected["prior_bce"]) > 0.05
    assert expected["feature_reconstruction"].min() > 0.1

    outputs = model(x, training=True)
    np.testing.assert_allclose(outputs["prior_z"].numpy(), eps, rtol=1e-6)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, outputs).items()}
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
    # Large logits stay finite (softplus, not log(sigmoid)).
    extreme = model.loss_terms({"x": x}, {**outputs, "real_logits": tf.fill([5], -200.0),
                                          "prior_logits": tf.fill([5], 200.0)})
    np.testing.assert_allclose(extreme["discriminator_loss"].numpy(), 400.0, rtol=1e-6)

    # The step logs the global-batch means.
    model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    logs = {k: float(v) for k, v in model.train_step({"x": tf.constant(x)}).items()}
    for name in ("loss", "encoder_loss", "decoder_loss", "discriminator_loss"):
        np.testing.assert_allclose(logs[name], expected[name].mean(), rtol=1e-5, err_msg=name)
    assert logs["discriminator_updated"] == logs["decoder_updated"] == 1.0


@pytest.mark.parametrize("scale", [0.0, SCALE])
def test_each_optimizer_steps_by_the_gradient_of_its_own_loss(monkeypatch, scale):
    """One SGD step: the encoder moves by -lr * d(encoder_loss), the decoder by
    -lr * d(decoder_loss), the discriminator by -lr * d(discriminator_loss), all at the weights
    before the step. At scale 0 the decoder's gradient is the feature reconstruction's alone;
    otherwise the adversarial term reaches it too (through the decoded prior draws)."""
    x = structured_images(8, SHAPE)
    fixed_noise(monkeypatch, np.random.default_rng(2).standard_normal((8, 2)).astype("float32"))
    model = tiny_model(adversarial_loss_scale=scale, equilibrium_gating=False)
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms({"x": x}, model(x, training=True))
        means = {k: tf.reduce_mean(v) for k, v in terms.items()}
    owned = model.optimizer_variables()
    assert [len(owned[name]) for name in NAMES] == [
        len(model.encoder.trainable_variables), len(model.decoder.trainable_variables), 6]
    expected = {}
    for name in NAMES:
        gradients = tape.gradient(means[LOSSES[name]], owned[name])
        assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients), name
        expected.update({id(v): v.numpy() - 0.05 * g.numpy()
                         for v, g in zip(owned[name], gradients)})
    decoder = owned["decoder_optimizer"]
    feature_only = tape.gradient(means["feature_reconstruction"], decoder)
    adversarial = tape.gradient(means["discriminator_loss"], decoder)
    assert max(float(tf.reduce_max(tf.abs(g))) for g in adversarial) > 1e-4
    if scale == 0.0:  # no adversarial term in the decoder's loss
        for v, g in zip(decoder, feature_only):
            np.testing.assert_allclose(expected[id(v)], v.numpy() - 0.05 * g.numpy(), rtol=1e-6)
    del tape

    assert_sgd_step_lands_on(model, x, expected, NAMES)


def test_the_equilibrium_rule():
    def gates(real, prior):
        return tuple(bool(g) for g in equilibrium_gates(tf.constant(real), tf.constant(prior),
                                                        0.68, 0.4))

    # (update the discriminator, update the decoder)
    assert gates(0.69, 0.69) == (True, True)  # in balance
    assert gates(0.2, 0.69) == (False, True)  # D wins on data: D rests
    assert gates(0.69, 0.1) == (False, True)  # D wins on the generated images: D rests
    assert gates(1.2, 0.69) == (True, False)  # D loses badly: the decoder rests
    assert gates(0.69, 1.5) == (True, False)
    assert gates(0.1, 1.5) == (True, True)  # both would rest: both update


def snapshot(model):
    return ({v.path: v.numpy() for v in model.trainable_variables},
            {name: [v.numpy() for v in getattr(model, name).variables] for name in NAMES})


def check_skipped(model, before, skipped):
    """The `skipped` optimizer's variables and its whole state (moments, iterations) are as
    before; the others moved."""
    weights, states = before
    for name in NAMES:
        optimizer = getattr(model, name)
        same_state = all(np.array_equal(a, v.numpy())
                         for a, v in zip(states[name], optimizer.variables))
        assert same_state == (name == skipped), name
        assert int(optimizer.iterations.numpy()) == (0 if name == skipped else 1), name
        for v in model.optimizer_variables()[name]:
            moved = not np.array_equal(weights[v.path], v.numpy())
            assert moved == (name != skipped), (name, v.path)


@pytest.mark.parametrize("equilibrium, margin, skipped", [
    (10.0, 1.0, "discriminator_optimizer"),  # both cross-entropies below 9: D "wins"
    (0.1, 0.05, "decoder_optimizer"),  # both above 0.15: D "loses"
])
def test_a_gated_update_applies_nothing_even_with_adam(equilibrium, margin, skipped):
    model = tiny_model(equilibrium=equilibrium, margin=margin)
    model.compile(**model.make_optimizers(1e-2), jit_compile=False)
    before = snapshot(model)
    logs = model.fit(structured_images(8, SHAPE), batch_size=8, epochs=1, verbose=0).history
    assert logs["discriminator_updated"] == [float(skipped != "discriminator_optimizer")]
    assert logs["decoder_updated"] == [float(skipped != "decoder_optimizer")]
    check_skipped(model, before, skipped)
    assert int(model.steps_trained) == 1


def test_the_gate_holds_on_two_replicas():
    """MirroredStrategy on CPUs all-reduces through merge_call: the gate is taken in the
    cross-replica context (`apply_if`), from global means, and both replicas skip."""
    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        assert not tf.__internal__.distribute.strategy_supports_no_merge_call()
        model = tiny_model(equilibrium=10.0, margin=1.0)
        model.compile(**model.make_optimizers(1e-2), jit_compile=False)
    before = snapshot(model)
    logs = model.fit(structured_images(8, SHAPE), batch_size=8, epochs=1, verbose=0).history
    assert logs["discriminator_updated"] == [0.0] and logs["decoder_updated"] == [1.0]
    check_skipped(model, before, "discriminator_optimizer")


def test_the_export_holds_no_discriminator(tmp_path):
    model = tiny_model()
    version = export_saved_model(model, tmp_path)
    saved = tf.train.list_variables(str(version / "variables" / "variables"))
    shapes = sorted(tuple(shape) for name, shape in saved if "VARIABLE_VALUE" in name)
    discriminator = {id(v) for v in model.discriminator.weights}
    serving = [v for v in model.trainable_weights if id(v) not in discriminator]
    assert len(serving) < len(model.trainable_weights)
    assert shapes == sorted(tuple(v.shape) for v in serving)  # the encoder's and decoder's only
    assert not any("discriminator" in name for name, _ in saved)
    loaded = tf.saved_model.load(str(version))
    assert sorted(loaded.signatures) == sorted(model.serving_endpoints())


def test_defaults_are_pythaes_and_bad_arguments_are_refused():
    model = build_zoo_model("vae_gan", (28, 28, 1))
    assert (model.adversarial_loss_scale, model.equilibrium, model.margin) == (0.5, 0.68, 0.4)
    assert model.reconstruction_layer == -1 and model.equilibrium_gating
    assert model.selection_metric() == ("val_reconstruction", "min")
    assert not model.capabilities.has_density and not model.capabilities.batch_dependent_objective
    features, logit = model.discriminator.outputs
    assert features.shape == (None, 7 * 7 * 64) and logit.shape == (None, 1)
    assert all(w.dtype == "float32" for w in model.discriminator.weights)
    rates = {k: float(o.learning_rate) for k, o in model.make_optimizers(3e-3).items()}
    assert rates == dict.fromkeys(NAMES, float(np.float32(3e-3)))
    told = build_zoo_model("vae_gan", (28, 28, 1), decoder_learning_rate=1e-4,
                           discriminator_learning_rate=2e-4).make_optimizers(3e-3)
    assert float(told["decoder_optimizer"].learning_rate) == float(np.float32(1e-4))
    assert float(told["discriminator_optimizer"].learning_rate) == float(np.float32(2e-4))
    for arguments, message in [
        ({"adversarial_loss_scale": 1.5}, r"adversarial_loss_scale must be in \[0, 1\]"),
        ({"adversarial_loss_scale": -0.1}, r"adversarial_loss_scale must be in \[0, 1\]"),
        ({"margin": -1.0}, "margin must be >= 0"),
        ({"discriminator_filters": []}, "discriminator_filters must be a non-empty list"),
        ({"discriminator_kernel_size": 0}, "discriminator_kernel_size must be >= 1"),
        ({"reconstruction_layer": 2}, "reconstruction_layer must index one of the 2 conv blocks"),
        ({"decoder_learning_rate": 0.0}, "decoder_learning_rate must be > 0"),
        ({"discriminator_learning_rate": -1e-3}, "discriminator_learning_rate must be > 0"),
    ]:
        with pytest.raises(UserInputError, match=message):
            build_zoo_model("vae_gan", (28, 28, 1), **arguments)


class TestVAEGAN(ZooModelChecks):
    model_name = "vae_gan"
    check_export = False  # conv_vae's networks and endpoints: exported in the VAE's tests
    # The loss is the value of a game in the discriminator's moving feature space (it rose in
    # 4 epochs on the harness's blobs); the pixel reconstruction measures the fit.
    lowered_metric = "reconstruction"
