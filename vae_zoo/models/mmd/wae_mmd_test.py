"""The MMD with both kernels against a double loop in numpy on tiny fixed inputs, what it
measures, WAE's loss by hand with fixed prior draws, and the harness."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.ae.ae_test import tiny_ae
from vae_zoo.models.ae.ae_test import tiny_ae_by_hand
from vae_zoo.models.mmd import mmd
from vae_zoo.models.mmd.kernels import IMQ_SCALES
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import fixed_noise

Z = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
P = np.array([[1.0, 1.0], [0.0, -1.0], [2.0, 0.0]])


def numpy_kernel(a, b, kernel, scales):
    c = 2.0 * len(a)  # C = 2 d, the prior's variance 1
    d2 = float(np.sum((np.asarray(a) - np.asarray(b)) ** 2))
    if kernel == "imq":
        return sum(s * c / (s * c + d2) for s in scales)
    return sum(np.exp(-d2 / (s * c)) for s in scales)


def numpy_mmd(z, p, kernel, scales):
    """Tolstikhin et al.'s Algorithm 2, one pair at a time."""
    n = len(z)
    same = sum(numpy_kernel(z[i], z[j], kernel, scales) + numpy_kernel(p[i], p[j], kernel, scales)
               for i in range(n) for j in range(n) if i != j)
    cross = sum(numpy_kernel(z[i], p[j], kernel, scales) for i in range(n) for j in range(n))
    return same / (n * (n - 1)) - 2 * cross / n**2


def test_imq_kernel_by_hand():
    # One scale, d = 2, so C = 4: k(z_1, p_1) = 4 / (4 + 1 + 1) = 2/3, and so on.
    assert numpy_kernel(Z[0], P[0], "imq", [1.0]) == pytest.approx(4 / 6)
    same_z = 4 / 5 + 4 / 8 + 4 / 9  # |z1-z2|^2 = 1, |z1-z3|^2 = 4, |z2-z3|^2 = 5
    same_p = 4 / 9 + 4 / 6 + 4 / 9  # 5, 2, 5
    cross = sum(4 / (4 + d) for d in [2, 1, 4, 1, 2, 1, 2, 9, 8])
    expected = 2 * (same_z + same_p) / 6 - 2 * cross / 9
    assert numpy_mmd(Z, P, "imq", [1.0]) == pytest.approx(expected)
    np.testing.assert_allclose(float(mmd(tf.constant(Z, tf.float32), tf.constant(P, tf.float32),
                                         "imq", [1.0])), expected, rtol=1e-5)


@pytest.mark.parametrize("kernel, scales", [("imq", IMQ_SCALES), ("rbf", [1.0]),
                                            ("rbf", [0.5, 2.0])])
def test_mmd_against_numpy(kernel, scales):
    rng = np.random.default_rng(0)
    z, p = rng.normal(size=(6, 3)) + 0.5, rng.normal(size=(6, 3))
    np.testing.assert_allclose(
        float(mmd(tf.constant(z, tf.float32), tf.constant(p, tf.float32), kernel, scales)),
        numpy_mmd(z, p, kernel, scales), rtol=1e-5)


def test_mmd_is_near_zero_for_prior_codes_and_grows_with_the_shift():
    rng = np.random.default_rng(1)
    p = tf.constant(rng.normal(size=(256, 8)), tf.float32)
    values = [float(mmd(tf.constant(rng.normal(size=(256, 8)) + shift, tf.float32), p))
              for shift in (0.0, 0.5, 2.0)]
    assert abs(values[0]) < 0.01 < values[1] < values[2], values


def test_wae_loss_by_hand_with_fixed_prior_draws(monkeypatch, mnist_images):
    model = tiny_ae("wae_mmd", mmd_weight=7.0)
    x = mnist_images[:4]
    eps = np.random.default_rng(2).standard_normal((4, 3))
    fixed_noise(monkeypatch, eps.astype("float32"))
    z, reconstruction = tiny_ae_by_hand(model, x)
    penalty = numpy_mmd(z, eps, "imq", IMQ_SCALES)
    outputs = model(x, training=True)
    np.testing.assert_allclose(outputs["prior_z"].numpy(), eps, rtol=1e-6)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["mmd"], np.full(4, penalty), rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], reconstruction + 7.0 * penalty, rtol=1e-5)


def test_training_draws_repeat_by_step_and_differ_across_steps(mnist_images):
    model = tiny_ae("wae_mmd")
    x = mnist_images[:8]
    first = model(x, training=True)["prior_z"].numpy()
    np.testing.assert_array_equal(model(x, training=True)["prior_z"].numpy(), first)
    model.steps_trained.assign(1)
    second = model(x, training=True)["prior_z"].numpy()
    assert not np.allclose(second, first)
    assert abs(second.mean()) < 0.5 and 0.6 < second.std() < 1.4  # N(0, I) draws


def test_bad_kernels_are_refused():
    with pytest.raises(UserInputError, match="kernel"):
        tiny_ae("wae_mmd", kernel="laplace")
    with pytest.raises(UserInputError, match="kernel_scales"):
        tiny_ae("wae_mmd", kernel_scales=[1.0, 0.0])


class TestWAE(ZooModelChecks):
    model_name = "wae_mmd"
    check_export = False  # the AE's networks and endpoints: exported in TestAE
