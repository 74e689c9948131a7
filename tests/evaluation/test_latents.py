"""Active units and reconstruction error, on a model whose code variances are set by hand."""

import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.evaluation.latents import latent_statistics
from vae_zoo.evaluation.latents import representations
from vae_zoo.models import VAE


def test_active_units_count_latent_means_that_vary():
    model = VAE((4,), latent_dim=3, network="dense", hidden_units=[])
    head = model.encoder.get_layer("posterior")
    kernel = np.zeros((4, 3), "float32")
    kernel[0, 0], kernel[1, 1] = 1.0, 0.05  # unit 0 varies (var 1/12), unit 1 barely, unit 2 not
    head.mean_dense.set_weights([kernel, np.zeros(3, "float32")])
    x = np.random.default_rng(0).uniform(size=(2000, 4)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices({"x": x}).batch(500)
    stats = latent_statistics(model, batches)
    assert stats["active_units"] == 1 and stats["latent_dim"] == 3
    assert stats["latent_mean_variances"][0] == pytest.approx(1 / 12, rel=0.1)
    codes = representations(model, batches, limit=700)
    assert codes.shape == (700, 3)
    np.testing.assert_allclose(codes[:, 0], x[:700, 0], atol=1e-6)
    expected = np.mean((model.reconstruct(x).numpy() - x) ** 2)
    assert stats["reconstruction_mse"] == pytest.approx(expected, rel=1e-5)
