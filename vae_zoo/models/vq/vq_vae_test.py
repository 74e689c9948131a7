import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.evaluation.codebook import codebook_usage
from vae_zoo.evaluation.codebook import perplexity
from vae_zoo.layers import VectorQuantizer
from vae_zoo.networks.pixelcnn import build_pixelcnn
from vae_zoo.testing.harness import ZooModelChecks
from vae_zoo.testing.harness import build_zoo_model
from vae_zoo.testing.harness import structured_images


def quantizer_with(codebook, ema_decay=None, **kwargs):
    layer = VectorQuantizer(len(codebook), codebook.shape[1], ema_decay=ema_decay, **kwargs)
    layer.updates.assign(1)  # keep the codebook below
    layer.codebook.assign(codebook)
    if ema_decay is not None:
        layer.ema_sums.assign(codebook)
    return layer


CODEBOOK = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], "float32")
Z_E = np.array([[[0.4, 0.1], [0.9, -0.2]], [[0.2, 1.2], [3.0, 3.0]]], "float32")  # (2, 2, 2)


def test_quantizer_picks_the_nearest_code_and_passes_gradients_straight_through():
    layer = quantizer_with(CODEBOOK)
    z_e = tf.constant(Z_E)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z_e)
        codes, quantized = layer(z_e)
        out = VectorQuantizer.straight_through(z_e, quantized)
        weighted = tf.reduce_sum(out * np.arange(8, dtype="float32").reshape(2, 2, 2))
    # By hand: (0.4, 0.1) is 0.17 from e0 and 0.37 from e1; (0.9, -0.2) 0.05 from e1;
    # (0.2, 1.2) 0.68 from e2 and 1.48 from e0; (3, 3) 9 + 1 = 10 from e2, 13 from e1.
    np.testing.assert_array_equal(codes.numpy(), [[0, 1], [2, 2]])
    np.testing.assert_array_equal(quantized.numpy(), CODEBOOK[[[0, 1], [2, 2]]])
    np.testing.assert_array_equal(out.numpy(), quantized.numpy())  # the forward pass: e_k
    # The backward pass: the identity wrt z_e, nothing to the codebook.
    np.testing.assert_array_equal(tape.gradient(weighted, z_e).numpy(),
                                  np.arange(8, dtype="float32").reshape(2, 2, 2))
    assert tape.gradient(weighted, layer.codebook.value) is None


def test_the_loss_terms_by_hand(monkeypatch):
    """Per example: -log p(x|z_q) + ||sg[z_e] - e||^2 + 0.25 ||z_e - sg[e]||^2 over the grid,
    with their gradients going to the codebook and to the encoder output respectively."""
    model = build_zoo_model("vq_vae", (4, 4, 1), filters=[2], num_codes=3, code_dim=2,
                            ema_decay=None)
    model.quantizer.codebook.assign(CODEBOOK)
    x = np.random.default_rng(0).uniform(size=(2, 4, 4, 1)).astype("float32")
    z_e = tf.constant(Z_E)
    logits = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 1)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z_e)
        codes, quantized = model.quantizer(z_e)
        terms = model.loss_terms({"x": x}, {"z_e": z_e, "quantized": quantized,
                                            "x_params": logits})
        loss = tf.reduce_sum(terms["loss"])
    e = CODEBOOK[[[0, 1], [2, 2]]]
    distance = ((Z_E - e) ** 2).reshape(2, -1).sum(axis=1)  # [0.17 + 0.05, 0.68 + 10]
    np.testing.assert_allclose(distance, [0.22, 10.68], rtol=1e-6)
    bce = -(x * np.log(1 / (1 + np.exp(-logits.numpy())))
            + (1 - x) * np.log(1 - 1 / (1 + np.exp(-logits.numpy())))).reshape(2, -1).sum(1)
    np.testing.assert_allclose(terms["reconstruction"].numpy(), bce, rtol=1e-5)
    np.testing.assert_allclose(terms["quantization"].numpy(), distance, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"].numpy(), bce + 1.25 * distance, rtol=1e-5)
    # d/dz_e: 0.25 * 2 (z_e - e) (commitment only); d/de_k: 2 sum of (e_k - z_e) over its vectors.
    np.testing.assert_allclose(tape.gradient(loss, z_e).numpy(), 0.5 * (Z_E - e), rtol=1e-5)
    expected = np.zeros_like(CODEBOOK)
    for z, k in zip(Z_E.reshape(-1, 2), [0, 1, 2, 2]):
        expected[k] += 2 * (CODEBOOK[k] - z)
    gradient = tf.convert_to_tensor(tape.gradient(loss, model.quantizer.codebook.value))
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-5)


def ema_by_hand(codebook, vectors, codes, decay, eps=1e-5):
    """`(N_k, m_k, e_k)` after one EMA update from N_k = 1 and m_k = e_k (the paper's A.1, with
    Laplace smoothing of the counts), with numpy; no dead-code restarts."""
    num_codes = len(codebook)
    assigned = np.eye(num_codes)[codes]
    counts = decay * np.ones(num_codes) + (1 - decay) * assigned.sum(0)
    sums = decay * codebook + (1 - decay) * assigned.T @ vectors
    total = counts.sum()
    smoothed = (counts + eps) / (total + num_codes * eps) * total
    return counts, sums, sums / smoothed[:, None]


def test_ema_update_follows_the_papers_formulas():
    decay = 0.9
    layer = quantizer_with(CODEBOOK, ema_decay=decay)
    codes, _ = layer(tf.constant(Z_E), training=True)
    counts, sums, codebook = ema_by_hand(CODEBOOK, Z_E.reshape(-1, 2), [0, 1, 2, 2], decay)
    np.testing.assert_allclose(layer.ema_counts.numpy(), counts, rtol=1e-6)
    np.testing.assert_allclose(layer.ema_sums.numpy(), sums, rtol=1e-6)
    np.testing.assert_allclose(layer.codebook.numpy(), codebook, rtol=1e-5)
    # e_2 moved towards the mean of its two vectors, (1.6, 2.1); an inference call moves nothing.
    assert np.linalg.norm(layer.codebook.numpy()[2] - [1.6, 2.1]) < np.linalg.norm(
        CODEBOOK[2] - [1.6, 2.1])
    before = layer.codebook.numpy()
    layer(tf.constant(Z_E), training=False)
    np.testing.assert_array_equal(layer.codebook.numpy(), before)


def test_the_first_training_call_draws_the_codebook_from_the_batch():
    layer = VectorQuantizer(3, 2)  # no EMA: only the first call changes the codebook
    vectors = Z_E.reshape(-1, 2)
    layer(tf.constant(Z_E))  # an inference call draws nothing
    assert int(layer.updates.numpy()) == 0
    codes, quantized = layer(tf.constant(Z_E), training=True)
    codebook = layer.codebook.numpy()
    rows = [np.flatnonzero((vectors == e).all(axis=1)) for e in codebook]
    assert all(len(r) == 1 for r in rows) and len({int(r[0]) for r in rows}) == 3
    np.testing.assert_array_equal(quantized.numpy(), codebook[codes.numpy()])
    layer(tf.constant(Z_E + 5.0), training=True)  # later calls do not draw again
    np.testing.assert_array_equal(layer.codebook.numpy(), codebook)


def test_a_code_that_no_vector_chooses_restarts_at_a_vector_of_the_batch():
    codebook = np.concatenate([CODEBOOK, [[50.0, 50.0]]]).astype("float32")  # e_3: never chosen
    layer = quantizer_with(codebook, ema_decay=0.9, dead_code_threshold=0.95)
    layer(tf.constant(Z_E), training=True)
    # N_3 = 0.9 * 1 + 0.1 * 0 = 0.9 < 0.95: restarted at a batch vector, count 1; others kept.
    assert any(np.allclose(layer.codebook.numpy()[3], v) for v in Z_E.reshape(-1, 2))
    np.testing.assert_allclose(layer.ema_counts.numpy(), [1.0, 1.0, 1.1, 1.0], rtol=1e-6)
    np.testing.assert_allclose(layer.ema_sums.numpy()[3], layer.codebook.numpy()[3])


def test_pixelcnn_output_at_a_position_depends_only_on_earlier_positions():
    height, width, num_codes = 5, 4, 3
    network = build_pixelcnn((height, width), num_codes, filters=8, residual_layers=2)
    inputs = tf.constant(np.random.default_rng(0).uniform(size=(1, height, width, num_codes)),
                         tf.float32)
    for i in range(height * width):
        r, c = divmod(i, width)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            logits = network(inputs)[0, r, c]
        grad = np.abs(tape.gradient(logits, inputs).numpy()[0]).sum(-1).ravel()  # per position
        assert (grad[i:] == 0).all(), (i, grad)
        if c > 0:
            assert grad[i - 1] > 0  # the position to the left is seen: the mask is not all zeros


def test_perplexity_and_dead_codes_by_hand(mnist_images):
    assert perplexity([5, 5, 0, 0]) == pytest.approx(2.0)
    assert perplexity([7, 0, 0]) == pytest.approx(1.0)
    p = np.array([0.5, 0.25, 0.25])
    assert perplexity([2, 1, 1]) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    model = build_zoo_model("vq_vae", (28, 28, 1))
    batches = tf.data.Dataset.from_tensor_slices({"x": mnist_images[:64]}).batch(32)
    results = codebook_usage(model, batches)
    codes = model.codes(mnist_images[:64]).numpy().ravel()
    counts = np.bincount(codes, minlength=model.num_codes)
    assert results["dead_codes"] == (counts == 0).sum()
    assert results["perplexity"] == pytest.approx(perplexity(counts))
    nll = model.code_nll(model.codes(mnist_images[:64]),
                         model.prior_logits(model.codes(mnist_images[:64])))
    assert results["prior_nll"] == pytest.approx(float(tf.reduce_mean(nll)), rel=1e-5)


def test_the_prior_stage_trains_the_prior_alone_and_sampling_draws_from_it():
    keras.utils.set_random_seed(0)
    model = build_zoo_model("vq_vae", (28, 28, 1), num_codes=4, prior_filters=16)
    x = structured_images(64, (28, 28, 1))
    batches = tf.data.Dataset.from_tensor_slices({"x": x}).batch(16)
    model.compile(**model.make_optimizers(1e-3), jit_compile=False)
    model.fit(batches, epochs=1, verbose=0)
    prior_ids = {id(w) for w in model.prior_network.weights} | {id(model.steps_trained)}
    frozen = [w.numpy().copy() for w in model.weights if id(w) not in prior_ids]
    prior = [w.numpy().copy() for w in model.prior_network.weights]
    model.begin_stage(1)
    model.compile(**model.make_optimizers(1e-2), jit_compile=False)
    history = model.fit(batches, epochs=6, verbose=0).history
    assert set(history) == {"loss", "prior_nll"}
    assert history["loss"][-1] < 0.9 * history["loss"][0]
    after = [w.numpy() for w in model.weights if id(w) not in prior_ids]
    assert len(frozen) == len(after) > 5
    for a, b in zip(frozen, after):
        np.testing.assert_array_equal(a, b)  # the autoencoder and its codebook are frozen
    assert any(np.abs(a - w.numpy()).max() > 0 for a, w in zip(prior, model.prior_network.weights))
    # Codes drawn by the sampler follow the prior's frequencies of the training codes.
    counts = np.bincount(model.codes(x).numpy().ravel(), minlength=4) / (64 * 49)
    drawn = np.bincount(model.sample_codes(200, seed=1).numpy().ravel(), minlength=4) / (200 * 49)
    np.testing.assert_allclose(drawn, counts, atol=0.1)


class TestVQVAE(ZooModelChecks):
    model_name = "vq_vae"
    # A smaller prior: the export checks draw 2000 samples, each a PixelCNN pass per position.
    model_overrides = {"num_codes": 16, "prior_filters": 16}


@pytest.mark.parametrize("override, message", [
    ({"ema_decay": 1.5}, "ema_decay must be in \\(0, 1\\), or null"),
    ({"num_codes": 1}, "num_codes must be at least 2"),
    ({"commitment": -1.0}, "commitment must be >= 0"),
])
def test_bad_values_are_user_errors(override, message):
    from vae_zoo.errors import UserInputError

    with pytest.raises(UserInputError, match=message):
        build_zoo_model("vq_vae", (28, 28, 1), **override)
