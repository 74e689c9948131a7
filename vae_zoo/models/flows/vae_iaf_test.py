"""VAEIAF: the MADE's autoregressive masks, one IAF step against Kingma et al.'s eq. 14 in
numpy, log q(z_K|x) against TFP's TransformedDistribution (which inverts the flow through the
MAF's d-pass forward map), the round trip, the loss and weights by hand, and the harness (the
flow family's export representative)."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.flows.made import MADE
from vae_zoo.models.flows.made import autoregressive_masks
from vae_zoo.models.flows.vae_lin_nf_test import check_loss_and_weights_by_hand
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model


def tiny_iaf(**overrides):
    return build_zoo_model("vae_iaf", (28, 28, 1), hidden_units=[8], latent_dim=4,
                           **{"made_units": [12], "context_size": 3, **overrides})


def randomise(layer, seed=0, scale=1.0):
    """Weights far from their near-identity start, so every connection a mask lets through
    shows in the outputs."""
    rng = np.random.default_rng(seed)
    layer.set_weights([scale * rng.normal(size=w.shape).astype("float32")
                       for w in layer.get_weights()])


def test_masks_make_output_i_depend_on_inputs_before_i_only():
    d = 5
    for hidden in ([7], [9, 6]):
        made = MADE(d, hidden, context_size=2)
        randomise(made)
        z = tf.constant(np.random.default_rng(1).normal(size=(1, d)), tf.float32)
        context = tf.constant([[0.3, -0.2]])
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            shift, log_scale = made(z, context)
        for out in (shift, log_scale):
            jacobian = tape.batch_jacobian(out, z)[0].numpy()  # (output i, input j)
            assert (jacobian[np.triu_indices(d)] == 0).all(), hidden  # j >= i: no path
            assert (np.abs(jacobian[np.tril_indices(d, -1)]) > 0).mean() > 0.5, hidden
    # The mask product is what a path through the network can reach: strictly lower.
    reach = np.linalg.multi_dot(autoregressive_masks(d, [9, 6])).T  # (output, input)
    assert (reach[np.triu_indices(d)] == 0).all() and (reach[np.tril_indices(d, -1)] > 0).all()


def test_every_output_sees_the_context():
    made = MADE(3, [4], context_size=2)
    randomise(made)
    z = tf.zeros([1, 3])
    context = tf.constant([[0.5, -1.0]])
    with tf.GradientTape() as tape:
        tape.watch(context)
        shift, _ = made(z, context)
    assert (np.abs(tape.jacobian(shift, context).numpy()[0, :, 0]).sum(axis=-1) > 0).all()


def numpy_made(made, z, context):
    """The MADE's m and s in numpy from its weights and masks."""
    kernels = [k.numpy() for k in made.kernels]
    biases = [b.numpy() for b in made.biases]
    h = z
    for i, (k, b) in enumerate(zip(kernels, biases)):
        h = h @ (k * made.masks[i]) + b
        if i == 0:
            h = h + context @ made.context_kernels[0].numpy()
        if i < len(kernels) - 1:
            h = np.maximum(h, 0)
    h = h + context @ made.context_kernels[1].numpy()
    return h[..., :made.event_size], h[..., made.event_size:]


def test_the_flow_is_eq_14_with_the_order_reversed_between_steps(mnist_images):
    """z_k = sigmoid(s) z_{k-1} + (1 - sigmoid(s)) m, log |det| = sum log sigmoid(s), (m, s)
    from the MADE in numpy."""
    model = tiny_iaf(num_steps=3)
    for k, made in enumerate(model.mades):
        randomise(made, seed=k)
    context = model.encoder(mnist_images[:3])[2].numpy().astype("float64")
    z0 = np.random.default_rng(5).normal(size=(3, 4))
    z, log_det = z0, np.zeros(3)
    for k, made in enumerate(model.mades):
        if k:
            z = z[:, ::-1]
        m, s = numpy_made(made, z, context)
        gate = 1 / (1 + np.exp(-s))
        z = gate * z + (1 - gate) * m
        log_det += np.log(gate).sum(axis=-1)
    out, out_log_det = model.flow(tf.constant(z0, tf.float32), tf.constant(context, tf.float32))
    np.testing.assert_allclose(out.numpy(), z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out_log_det.numpy(), log_det, rtol=1e-4, atol=1e-4)


def test_log_q_against_tfp_and_the_round_trip(mnist_images):
    """The model's log q(z_K|x) = log q_0(z_0) - log_det (one pass per step) against TFP's
    `TransformedDistribution.log_prob(z_K)`, which finds z_0 by inverting the flow through the
    MAF's sequential forward map: the two meet only if the map and its log-det agree."""
    model = tiny_iaf(num_steps=2)
    for k, made in enumerate(model.mades):
        # Gates down to about sigmoid(-5): N(0, 1) weights gave gates of 1e-9, whose inverse
        # overflows in the MAF's first passes (over a z_0 not yet found) and ends in nan.
        randomise(made, seed=10 + k, scale=0.3)
    x = mnist_images[:4]
    outputs = model(x, training=True)
    posterior = model.posterior(x)
    np.testing.assert_allclose(posterior.log_prob(outputs["z"]).numpy(), outputs["log_q"].numpy(),
                               rtol=1e-4, atol=1e-4)
    bijector = model.bijector(model.encoder(x)[2])
    np.testing.assert_allclose(bijector.inverse(outputs["z"]).numpy(), outputs["z0"].numpy(),
                               rtol=1e-4, atol=1e-4)
    assert np.abs(np.asarray(outputs["z"]) - np.asarray(outputs["z0"])).max() > 0.1  # it moved


def test_loss_and_importance_weights_by_hand(monkeypatch, mnist_images):
    check_loss_and_weights_by_hand(monkeypatch, tiny_iaf(), mnist_images[:5])


def test_bad_arguments_are_refused():
    for bad in ({"num_steps": 0}, {"made_units": []}, {"context_size": 0}):
        with pytest.raises(UserInputError, match="num_steps"):
            tiny_iaf(**bad)


class TestVAEIAF(ZooModelChecks):
    model_name = "vae_iaf"
