"""AE: the harness (the AE family's export representative), the loss by hand, and what the
evaluation reports for a model without a density."""

import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import EvalSettings
from vae_zoo.evaluation import evaluate_metrics
from vae_zoo.export import QUANTIZATIONS
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model


def numpy_bernoulli_nll(x, logits):
    """-log p(x|z) summed over pixels, in float64: x log s + (1 - x) log(1 - s), s = sigmoid."""
    x, logits = x.astype("float64"), logits.astype("float64")
    return -np.sum(x * logits - np.logaddexp(0, logits), axis=tuple(range(1, x.ndim)))


def tiny_ae(name="ae", **overrides):
    """A dense network with no hidden layer: z = W x + b, logits = V z + c."""
    return build_zoo_model(name, (28, 28, 1), network="dense", filters=None, kernel_size=None,
                           hidden_units=[], latent_dim=3, **overrides)


def tiny_ae_by_hand(model, x):
    """The tiny AE's code z = W x + b and -log p(x|V z + c), in float64."""
    (w, b), (v, c) = model.encoder.get_weights(), model.decoder.get_weights()
    z = x.reshape(len(x), -1).astype("float64") @ w + b
    return z, numpy_bernoulli_nll(x, (z @ v + c).reshape(x.shape))


def test_loss_is_the_bernoulli_nll_of_the_decoded_code(mnist_images):
    model = tiny_ae()
    x = mnist_images[:6]
    (w, b), (v, c) = model.encoder.get_weights(), model.decoder.get_weights()
    z = x.reshape(6, -1).astype("float64") @ w + b
    logits = (z @ v + c).reshape(x.shape)
    terms = {k: t.numpy() for k, t in model.loss_terms({"x": x}, model(x)).items()}
    np.testing.assert_allclose(terms["reconstruction"], numpy_bernoulli_nll(x, logits), rtol=1e-5)
    np.testing.assert_array_equal(terms["loss"], terms["reconstruction"])
    np.testing.assert_allclose(model.representation(x).numpy(), z, rtol=1e-4, atol=1e-5)
    # Deterministic: the same code and reconstruction in training and at inference.
    np.testing.assert_array_equal(model(x, training=True)["z"].numpy(), model.representation(x))
    np.testing.assert_allclose(model.reconstruct(x).numpy(), 1 / (1 + np.exp(-logits)),
                               rtol=1e-4, atol=1e-6)


def test_evaluation_reports_the_reconstruction_and_no_density(mnist_images):
    model = tiny_ae()
    model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    batches = tf.data.Dataset.from_tensor_slices({"x": mnist_images[:64]}).batch(32)
    results = evaluate_metrics(model, batches, EvalSettings())
    assert "iw_nll" not in results and "elbo" not in results
    assert {"loss", "reconstruction", "reconstruction_mse", "active_units"} <= set(results)
    assert results["reconstruction"] == results["loss"] > 0


class TestAE(ZooModelChecks):
    model_name = "ae"
    tflite_modes = QUANTIZATIONS  # its encode endpoint is left out of dynamic and int8 files
