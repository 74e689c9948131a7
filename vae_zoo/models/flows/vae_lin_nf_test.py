"""Planar and radial flows against numpy (their maps by the paper's formulas, their log-dets
against slogdet of the autograd Jacobian), the invertibility constraints at adversarial
parameters, VAELinNF's loss and importance weights by hand with fixed noise, and the harness."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.ae.ae_test import numpy_bernoulli_nll
from vae_zoo.models.flows.linear_flows import LinearFlowChain
from vae_zoo.models.flows.linear_flows import planar
from vae_zoo.models.flows.linear_flows import radial
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise


def softplus(a):
    return np.logaddexp(0.0, a)


def numpy_planar(z, p):
    """Rezende & Mohamed's eq. 10 with the appendix's u_hat, one example at a time."""
    d = z.shape[-1]
    u, w, b = p[:d], p[d:2 * d], p[2 * d]
    wu = w @ u
    u_hat = u + (softplus(wu) - 1 - wu) * w / (w @ w)
    return z + u_hat * np.tanh(w @ z + b)


def numpy_radial(z, p):
    """Their eq. 14: f(z) = z + beta (z - z_ref) / (alpha + r)."""
    d = z.shape[-1]
    z_ref, alpha = p[:d], softplus(p[d])
    beta = softplus(p[d + 1]) - alpha
    return z + beta * (z - z_ref) / (alpha + np.linalg.norm(z - z_ref))


NUMPY_FLOWS = {"planar": numpy_planar, "radial": numpy_radial}
COUNTS = {"planar": lambda d: 2 * d + 1, "radial": lambda d: d + 2}


def numpy_chain(kinds, z, p):
    """The flows in order on one example, and log |det| of the whole map by finite differences
    (central, in float64) and numpy's slogdet: independent of the model's formulas."""
    def f(v):
        offset = 0
        for kind in kinds:
            size = COUNTS[kind](len(v))
            v = NUMPY_FLOWS[kind](v, p[offset:offset + size])
            offset += size
        return v

    h = 1e-6
    jacobian = np.stack([(f(z + h * e) - f(z - h * e)) / (2 * h) for e in np.eye(len(z))], 1)
    sign, log_det = np.linalg.slogdet(jacobian)
    return f(z), sign, log_det


@pytest.mark.parametrize("kinds", [["planar"], ["radial"], ["planar", "radial", "planar"]])
def test_flows_and_log_dets_against_numpy(kinds):
    rng = np.random.default_rng(0)
    d = 4
    z = rng.normal(size=(5, d))
    p = rng.normal(size=(5, sum(COUNTS[k](d) for k in kinds)))
    out, log_det = LinearFlowChain(kinds, tf.constant(p)).apply(tf.constant(z))
    for i in range(5):
        expected, sign, expected_log_det = numpy_chain(kinds, z[i], p[i])
        np.testing.assert_allclose(out[i].numpy(), expected, rtol=1e-10)
        assert sign > 0  # orientation-preserving, as the constraints promise
        np.testing.assert_allclose(log_det[i].numpy(), expected_log_det, rtol=1e-6, atol=1e-7)


def test_log_det_matches_the_autograd_jacobian_in_float32():
    """What the model runs: float32, several flows, batch and k axes broadcast."""
    rng = np.random.default_rng(1)
    kinds = ["radial", "planar", "planar"]
    z = tf.constant(rng.normal(size=(2, 3, 3)), tf.float32)  # (k, batch, d)
    p = tf.constant(rng.normal(size=(3, 3 + 2 + 7 + 7)), tf.float32)  # one set per example
    chain = LinearFlowChain(kinds, p)
    out, log_det = chain.apply(z)
    # Per example and draw: the Jacobian of that row's output with respect to that row's input.
    for k in range(2):
        for i in range(3):
            with tf.GradientTape() as tape:
                zi = z[k, i]
                tape.watch(zi)
                yi = LinearFlowChain(kinds, p[i]).apply(zi)[0]
            jacobian = tape.jacobian(yi, zi).numpy().astype("float64")
            np.testing.assert_allclose(log_det[k, i].numpy(), np.linalg.slogdet(jacobian)[1],
                                       rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(chain.forward(z).numpy(), out.numpy())
    np.testing.assert_allclose(chain.forward_log_det_jacobian(z, event_ndims=1).numpy(),
                               log_det.numpy())


@pytest.mark.parametrize("flow, p", [
    # w.u = -50: unconstrained, 1 + u.psi would be 1 - 50 tanh' < 0 near w.z + b = 0.
    (planar, np.r_[-5.0, -5.0, 5.0, 5.0, 0.0]),
    # beta far below -alpha before the constraint: det would change sign at small r.
    (radial, np.r_[0.0, 0.0, 3.0, -30.0]),
])
def test_the_constraints_keep_the_map_invertible_at_adversarial_parameters(flow, p):
    z = np.stack(np.meshgrid(np.linspace(-3, 3, 41), np.linspace(-3, 3, 41)), -1).reshape(-1, 2)
    out, log_det = flow(tf.constant(z), tf.constant(p))
    assert np.isfinite(log_det.numpy()).all()
    for i in range(0, len(z), 97):
        _, sign, expected = numpy_chain([flow.__name__], z[i], p)
        assert sign > 0
        np.testing.assert_allclose(log_det[i].numpy(), expected, rtol=1e-5, atol=1e-6)
    # Injective on the grid: no two points land on the same image.
    images = out.numpy()
    distances = np.linalg.norm(images[:, None] - images[None], axis=-1)
    assert distances[~np.eye(len(z), dtype=bool)].min() > 1e-6


def tiny_lin_nf(**overrides):
    return build_zoo_model("vae_lin_nf", (28, 28, 1), hidden_units=[8], latent_dim=3,
                           **{"flows": ["planar", "radial"], **overrides})


def numpy_flow_terms(model, x, eps):
    """log p(x|z_K), log p(z_K) - log q(z_K|x) and log_det in float64 for draws
    z_0 = mu + sigma eps `(k, batch, d)`, with the flow's map and Jacobian from `model.flow`
    checked elsewhere (here: its composition with the Gaussian, the prior and the decoder)."""
    mu, log_var, p = model.encoder(x)
    mu, log_var = mu.numpy().astype("float64"), log_var.numpy().astype("float64")
    z0 = mu + np.exp(0.5 * log_var) * eps
    z, log_det = (t.numpy().astype("float64")
                  for t in model.flow(tf.constant(z0, tf.float32), p))
    logits = model.decoder(z.reshape(-1, z.shape[-1]).astype("float32")).numpy()
    log_px = np.stack([-numpy_bernoulli_nll(x, l.reshape(x.shape))
                       for l in logits.reshape(len(eps), *x.shape)])
    log_q0 = np.sum(-0.5 * eps**2 - 0.5 * np.log(2 * np.pi) - 0.5 * log_var, axis=-1)
    log_pz = np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), axis=-1)
    return log_px, log_pz - (log_q0 - log_det), log_det


def check_loss_and_weights_by_hand(monkeypatch, model, x):
    """The loss is -log p(x|z_K) + log q_0(z_0) - log_det - log p(z_K) at the fixed draw, the
    IW weights the same formula at each of k fixed draws."""
    eps = np.random.default_rng(3).standard_normal((1, len(x), model.latent_dim))
    fixed_noise(monkeypatch, eps.astype("float32"))
    log_px, log_ratio, log_det = numpy_flow_terms(model, x, eps)
    terms = {k: v.numpy() for k, v in model.loss_terms({"x": x}, model(x, training=True)).items()}
    np.testing.assert_allclose(terms["reconstruction"], -log_px[0], rtol=1e-5)
    np.testing.assert_allclose(terms["kl"], -log_ratio[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["loss"], -(log_px[0] + log_ratio[0]), rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], log_px[0] + log_ratio[0], rtol=1e-5)
    np.testing.assert_allclose(terms["log_det"], log_det[0], rtol=1e-5, atol=1e-6)
    assert np.abs(log_det).min() > 1e-3  # the flow does something, so dropping it would show

    eps = np.random.default_rng(4).standard_normal((4, len(x), model.latent_dim))
    fixed_noise(monkeypatch, eps.astype("float32"))
    log_px, log_ratio, _ = numpy_flow_terms(model, x, eps)
    np.testing.assert_allclose(model.log_importance_weights(x, 4).numpy(), log_px + log_ratio,
                               rtol=1e-5)


def test_loss_and_importance_weights_by_hand(monkeypatch, mnist_images):
    check_loss_and_weights_by_hand(monkeypatch, tiny_lin_nf(), mnist_images[:5])


def test_the_flow_parameters_are_the_examples_own(mnist_images):
    """Amortised: two images get two different flows (a shared set would give equal ones)."""
    model = tiny_lin_nf()
    p = model.encoder(mnist_images[:2])[2].numpy()
    assert p.shape == (2, 7 + 5) and np.abs(p[0] - p[1]).max() > 1e-4


def test_posterior_samples_carry_their_log_prob(mnist_images):
    """`posterior(x)` is the TransformedDistribution: its draws' log q from TFP (base log-prob
    minus the chain's log-det) is what the model computes for the same z_0."""
    model = tiny_lin_nf()
    x = mnist_images[:3]
    z, log_q = model.posterior(x).experimental_sample_and_log_prob(2, seed=(1, 2))
    p = model.encoder(x)[2]
    base = model.posterior(x).distribution
    z0 = base.sample(2, seed=(1, 2))  # the same stateless draw TFP made
    z_model, log_det = model.flow(z0, p)
    np.testing.assert_allclose(z.numpy(), z_model.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_q.numpy(), (base.log_prob(z0) - log_det).numpy(), rtol=1e-5)


def test_unknown_flows_are_refused():
    with pytest.raises(UserInputError, match="flows"):
        tiny_lin_nf(flows=["planar", "sylvester"])
    with pytest.raises(UserInputError, match="flows"):
        tiny_lin_nf(flows=[])


class TestVAELinNF(ZooModelChecks):
    model_name = "vae_lin_nf"
    check_export = False  # the flow family's export is tested with vae_iaf (vae_iaf_test.py)
