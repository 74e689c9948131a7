"""VampVAE: the harness, and the mixture prior, its Monte Carlo KL and its samples by hand."""

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise


def tiny_model(**overrides):
    keras.utils.set_random_seed(0)
    return build_zoo_model("vamp_vae", (28, 28, 1), hidden_units=[16], latent_dim=2,
                           num_pseudo_inputs=3, **overrides)


def log_normal(z, mean, log_var):
    """log N(z; mean, diag(exp(log_var))) summed over the last axis, float64."""
    return np.sum(-0.5 * (np.log(2 * np.pi) + log_var + (z - mean) ** 2 / np.exp(log_var)), -1)


def numpy_components(model):
    """Means and log-variances of q(z|u_k) for the clipped pseudo-inputs: `(K, latent)` each."""
    u = np.clip(model.pseudo_inputs.values.numpy(), 0.0, 1.0)
    return tuple(t.numpy().astype("float64") for t in model.encoder(u))


def numpy_log_prior(z, means, log_vars):
    """log 1/K sum_k N(z; means[k], log_vars[k]) by logsumexp, for z `(..., latent)`."""
    per_component = log_normal(z[..., None, :], means, log_vars)  # (..., K)
    peak = per_component.max(axis=-1, keepdims=True)
    return (peak + np.log(np.mean(np.exp(per_component - peak), -1, keepdims=True)))[..., 0]


def separate_components(model, rng):
    """Pseudo-inputs and a posterior head that give K well-separated, narrow components."""
    model.pseudo_inputs.values.assign(rng.uniform(size=model.pseudo_inputs.values.shape))
    head = model.encoder.get_layer("posterior")
    head.mean_dense.kernel.assign(rng.normal(scale=3.0, size=head.mean_dense.kernel.shape))
    head.log_var_dense.kernel.assign(np.zeros(head.log_var_dense.kernel.shape))
    head.log_var_dense.bias.assign(np.full(head.log_var_dense.bias.shape, -6.0))


def test_prior_is_the_mixture_of_the_pseudo_input_posteriors(mnist_images):
    model = tiny_model()
    separate_components(model, np.random.default_rng(1))
    means, log_vars = numpy_components(model)
    assert means.std(axis=0).max() > 1.0  # components apart, so a wrong mixture would show
    z = np.concatenate([means + 0.05, np.random.default_rng(2).normal(size=(20, 2))])
    np.testing.assert_allclose(model.prior().log_prob(z.astype("float32")).numpy(),
                               numpy_log_prior(z, means, log_vars), rtol=1e-4, atol=1e-4)


def test_kl_is_log_q_minus_log_mixture_at_the_drawn_z_and_the_loss_adds_it(monkeypatch,
                                                                            mnist_images):
    model = tiny_model()
    x = mnist_images[:6]
    eps = np.random.default_rng(0).standard_normal((6, 2))
    fixed_noise(monkeypatch, eps.astype("float32"))
    mu, log_var = (t.numpy().astype("float64") for t in model.encoder(x))
    z = mu + np.exp(0.5 * log_var) * eps
    kl = log_normal(z, mu, log_var) - numpy_log_prior(z, *numpy_components(model))
    logits = model.decoder(z.astype("float32")).numpy().astype("float64")
    rec = -np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))

    outputs = model(x)
    terms = {k: v.numpy() for k, v in model.loss_terms({"x": x}, outputs).items()}
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["loss"], rec + kl, rtol=1e-5)
    np.testing.assert_allclose(float(model.compute_loss(x=x, y_pred=outputs)), np.mean(rec + kl),
                               rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], -(rec + kl), rtol=1e-5)
    # The IW NLL's weights score the same z under the same mixture.
    np.testing.assert_allclose(model.log_importance_weights(x, 1).numpy()[0], -(rec + kl),
                               rtol=1e-5)


def test_samples_come_from_the_mixture_not_from_a_standard_normal():
    model = tiny_model()
    separate_components(model, np.random.default_rng(1))
    means, log_vars = numpy_components(model)
    n = 30000
    z = model.sample_latents(n).numpy().astype("float64")
    # Each draw sits on one component (they are far apart and narrow): count who drew what.
    nearest = np.argmin(((z[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.abs(z - means[nearest]).max() < 6 * np.exp(0.5 * log_vars).max()
    counts = np.bincount(nearest, minlength=3)
    assert (np.abs(counts - n / 3) < 5 * np.sqrt(n * (1 / 3) * (2 / 3))).all(), counts
    mixture_mean = means.mean(axis=0)
    mixture_var = (np.exp(log_vars) + means**2).mean(axis=0) - mixture_mean**2
    assert (np.abs(z.mean(axis=0) - mixture_mean) < 5 * np.sqrt(mixture_var / n)).all()
    np.testing.assert_allclose(z.var(axis=0), mixture_var, rtol=0.05)
    assert np.abs(mixture_var - 1).max() > 0.5  # so N(0, I) draws would have failed above
    # Seeded draws repeat, and sample() decodes them.
    np.testing.assert_array_equal(model.sample_latents(8, seed=4), model.sample_latents(8, seed=4))
    np.testing.assert_allclose(model.sample(8, seed=4).numpy(),
                               model.decode(model.sample_latents(8, seed=4)).numpy(), atol=1e-6)


def test_pseudo_inputs_are_clipped_to_pixels_and_learn(mnist_images):
    model = tiny_model()
    values = model.pseudo_inputs.values.numpy()
    assert values.shape == (3, 28, 28, 1) and abs(values.mean() - 0.05) < 0.01
    prior_before = model.prior().log_prob(np.zeros((1, 2), "float32")).numpy()
    model.pseudo_inputs.values.assign(np.where(values > 0.05, 2.0, -1.0).astype("float32"))
    clipped = np.where(values > 0.05, 1.0, 0.0)
    np.testing.assert_array_equal(model.pseudo_inputs.images().numpy(), clipped)
    assert model.prior().log_prob(np.zeros((1, 2), "float32")).numpy() != prior_before
    model.pseudo_inputs.values.assign(values)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(mnist_images[:64], batch_size=32, epochs=1, verbose=0)
    assert np.abs(model.pseudo_inputs.values.numpy() - values).max() > 1e-3


class TestVampVAE(ZooModelChecks):
    model_name = "vamp_vae"


def test_exported_sample_signature_draws_from_the_mixture_in_tflite(tmp_path):
    """The `sample` signature converts to TFLite builtins, and its images are distributed as
    Keras' mixture samples (narrow, separated components: N(0, I) draws would decode elsewhere)."""
    from ai_edge_litert.interpreter import Interpreter

    from vae_zoo.export import convert_to_tflite
    from vae_zoo.export import export_saved_model
    from vae_zoo.testing.harness import assert_same_distribution

    model = tiny_model()
    separate_components(model, np.random.default_rng(1))
    tflite = Interpreter(model_content=convert_to_tflite(export_saved_model(model, tmp_path)))
    drawn = tflite.get_signature_runner("sample")(n=np.array(2000, np.int32))["x_mean"]
    reference = model.sample(2000).numpy()
    assert_same_distribution(drawn, reference, "tflite sample")
    standard = model.decode(tf.random.normal([2000, 2])).numpy()
    with np.testing.assert_raises(AssertionError):
        assert_same_distribution(standard, reference, "N(0, I) decoded")


def test_the_pseudo_input_picture_shows_the_clipped_pseudo_inputs():
    model = tiny_model()
    model.pseudo_inputs.values.assign(
        np.linspace(-1.0, 2.0, model.pseudo_inputs.values.shape.num_elements())
        .reshape(model.pseudo_inputs.values.shape).astype("float32"))
    images, columns = model.family_pictures()["pseudo_inputs"]
    np.testing.assert_array_equal(images, np.clip(model.pseudo_inputs.values.numpy(), 0.0, 1.0))
    assert columns == 10
