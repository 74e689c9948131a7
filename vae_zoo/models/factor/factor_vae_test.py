"""FactorVAE: the harness (with its checks for a second optimizer), the TC term and the
discriminator's loss by hand, the permutation across the global batch, and an export without D."""

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.export import export_saved_model
from vae_zoo.models.factor import factor_vae
from vae_zoo.models.factor import permute_dims
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import fixed_noise

GAMMA = 7.0
# The discriminator, set by hand: 2 latents -> 3 leaky-ReLU units -> 2 logits.
W1 = np.array([[0.5, -1.0, 0.25], [1.5, 0.5, -0.75]])
B1 = np.array([0.1, -0.2, 0.3])
W2 = np.array([[1.0, -0.5], [-2.0, 0.75], [0.5, 1.25]])
B2 = np.array([0.2, -0.1])


def tiny_model():
    keras.utils.set_random_seed(0)
    model = build_zoo_model("factor_vae", (28, 28, 1), network="dense", filters=None,
                            kernel_size=None, hidden_units=[16], latent_dim=2, gamma=GAMMA,
                            discriminator_units=[3])
    hidden, logits = model.discriminator.layers
    hidden.kernel.assign(W1), hidden.bias.assign(B1)
    logits.kernel.assign(W2), logits.bias.assign(B2)
    return model


def numpy_discriminator(z):
    h = z @ W1 + B1
    return np.where(h > 0, h, 0.2 * h) @ W2 + B2


def log_softmax(logits):
    return logits - np.logaddexp(logits[:, :1], logits[:, 1:])


def swap_rows(z, seed=None):
    """A fixed stand-in for the random permutation: column 0 reversed, column 1 rolled by 1."""
    return tf.stack([tf.reverse(z[:, 0], [0]), tf.roll(z[:, 1], 1, 0)], axis=1)


def test_tc_term_and_discriminator_loss_by_hand(monkeypatch, mnist_images):
    model = tiny_model()
    x = mnist_images[:5]
    eps = np.random.default_rng(0).standard_normal((5, 2))
    fixed_noise(monkeypatch, eps.astype("float32"))
    monkeypatch.setattr(factor_vae, "permute_dims", swap_rows)
    mu, log_var = (t.numpy().astype("float64") for t in model.encoder(x))
    z = mu + np.exp(0.5 * log_var) * eps
    permuted = np.stack([z[::-1, 0], np.roll(z[:, 1], 1)], axis=1)
    real, fake = numpy_discriminator(z), numpy_discriminator(permuted)
    tc = real[:, 0] - real[:, 1]  # log D(z) / (1 - D(z)) with D = softmax(logits)_0
    kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var, axis=1)
    logits = model.decoder(z.astype("float32")).numpy().astype("float64")
    rec = -np.sum(x * logits - np.logaddexp(0, logits), axis=(1, 2, 3))
    d_loss = -0.5 * (log_softmax(real)[:, 0] + log_softmax(fake)[:, 1])
    d_accuracy = 0.5 * ((real[:, 0] > real[:, 1]) + 0.0 + (fake[:, 1] > fake[:, 0]))
    assert np.abs(tc).max() > 0.1 and 0 < d_accuracy.mean() < 1  # a wrong sign would show

    terms = {k: v.numpy() for k, v in model.loss_terms({"x": x}, model(x, training=True)).items()}
    np.testing.assert_allclose(terms["tc"], tc, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(terms["loss"], rec + kl + GAMMA * tc, rtol=1e-5)
    np.testing.assert_allclose(terms["elbo"], -(rec + kl), rtol=1e-5)
    np.testing.assert_allclose(terms["discriminator_loss"], d_loss, rtol=1e-5)
    np.testing.assert_array_equal(terms["discriminator_accuracy"], d_accuracy)

    # The step logs the global-batch means of both objectives.
    model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    logs = {k: float(v) for k, v in model.train_step({"x": tf.constant(x)}).items()}
    np.testing.assert_allclose(logs["loss"], np.mean(rec + kl + GAMMA * tc), rtol=1e-5)
    np.testing.assert_allclose(logs["discriminator_loss"], d_loss.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["tc"], tc.mean(), rtol=1e-4, atol=1e-5)


def test_permutation_shuffles_each_dimension_across_the_global_batch():
    z = np.arange(64, dtype="float32").reshape(16, 4)  # every entry distinct
    seed = tf.constant([3, 5], tf.int64)
    one = permute_dims(tf.constant(z), seed).numpy()
    for j in range(4):
        np.testing.assert_array_equal(np.sort(one[:, j]), z[:, j])  # a permutation per column
    source_rows = (one - np.arange(4)) // 4  # z[i, j] = 4 i + j
    assert len({tuple(source_rows[:, j]) for j in range(4)}) == 4  # each column its own order
    assert (one != z).mean() > 0.5
    np.testing.assert_array_equal(permute_dims(tf.constant(z), seed).numpy(), one)  # seeded
    assert not np.array_equal(permute_dims(tf.constant(z), seed + 1).numpy(), one)

    # On 2 replicas each holds its rows of the permutation one device draws.
    strategy = tf.distribute.MirroredStrategy(
        ["/cpu:0", "/cpu:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())
    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(z).batch(16))
    halves = strategy.run(tf.function(lambda b: permute_dims(b, seed)), args=(next(iter(batches)),))
    np.testing.assert_array_equal(
        np.concatenate([h.numpy() for h in strategy.experimental_local_results(halves)]), one)


def test_the_discriminator_learns_to_tell_correlated_codes_from_permuted_ones():
    """With codes whose dimensions are equal (maximal TC), D's loss falls below log 2 and the TC
    estimate grows positive; with independent dimensions it stays at chance."""
    def train(codes):
        model = tiny_model()
        model.discriminator_optimizer = keras.optimizers.Adam(1e-2)
        variables = model.discriminator.trainable_variables

        @tf.function
        def step(z, seed):
            with tf.GradientTape() as tape:
                outputs = {"discriminator_logits": model.discriminator(z),
                           "permuted_logits": model.discriminator(permute_dims(z, seed))}
                loss = tf.reduce_mean(model.discriminator_terms(outputs)["discriminator_loss"])
            model.discriminator_optimizer.apply(tape.gradient(loss, variables), variables)
            return loss

        for i in range(150):
            loss = step(tf.constant(codes[i % 4 * 64:(i % 4 + 1) * 64]),
                        tf.constant([0, i], tf.int64))
        logits = model.discriminator(tf.constant(codes)).numpy()
        return float(loss), float(np.mean(logits[:, 0] - logits[:, 1]))

    rng = np.random.default_rng(0)
    first = rng.standard_normal((256, 1)).astype("float32")
    loss, tc = train(np.hstack([first, first]))
    assert loss < 0.5 and tc > 1.0, (loss, tc)
    loss, tc = train(rng.standard_normal((256, 2)).astype("float32"))
    assert loss > 0.6 and abs(tc) < 0.5, (loss, tc)


def test_the_export_holds_no_discriminator(tmp_path):
    model = tiny_model()
    version = export_saved_model(model, tmp_path)
    saved = tf.train.list_variables(str(version / "variables" / "variables"))
    shapes = sorted(tuple(shape) for name, shape in saved if "VARIABLE_VALUE" in name)
    serving = [v for v in model.weights
               if v.trainable and not v.path.startswith("discriminator/")]
    assert shapes == sorted(tuple(v.shape) for v in serving)  # the encoder's and decoder's only
    assert (3, 2) not in shapes and not any("discriminator" in name for name, _ in saved)


def test_mixed_float16_scales_both_losses(mnist_images):
    keras.utils.set_random_seed(0)
    model = build_zoo_model("factor_vae", (28, 28, 1), precision="mixed_float16",
                            network="dense", filters=None, kernel_size=None, hidden_units=[16],
                            discriminator_units=[8])
    model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    for name in model.optimizer_variables():
        assert isinstance(getattr(model, name), keras.optimizers.LossScaleOptimizer), name
    before = model.discriminator.get_weights()
    history = model.fit(mnist_images[:64], batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1]) and np.isfinite(history["discriminator_loss"][-1])
    assert int(model.discriminator_optimizer.iterations) == 2
    assert any(np.abs(a - b).max() > 0 for a, b in zip(model.discriminator.get_weights(), before))


class TestFactorVAE(ZooModelChecks):
    model_name = "factor_vae"
    # The permutation is drawn over the global batch (`permute_dims`), so replicas match.
    global_batch_objective = True


def test_the_discriminator_learns_at_the_vaes_rate_unless_told():
    """The paper and disentanglement_lib train D and the VAE at one rate (1e-4 each): by
    default D takes the run's rate; an explicit rate is kept. D's Adam betas are the paper's."""
    optimizers = build_zoo_model("factor_vae", (28, 28, 1)).make_optimizers(3e-3)
    vae, discriminator = optimizers["optimizer"], optimizers["discriminator_optimizer"]
    assert float(vae.learning_rate) == float(discriminator.learning_rate) == np.float32(3e-3)
    assert (vae.beta_1, vae.beta_2) == (0.9, 0.999)
    assert (discriminator.beta_1, discriminator.beta_2) == (0.5, 0.9)
    told = build_zoo_model("factor_vae", (28, 28, 1), discriminator_learning_rate=1e-4)
    rate = told.make_optimizers(3e-3)["discriminator_optimizer"].learning_rate
    assert float(rate) == np.float32(1e-4)
