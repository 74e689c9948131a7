"""The checks every zoo model passes. A model's test file names it and inherits them all:

    class TestConvVAE(ZooModelChecks):
        model_name = "conv_vae"
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.config import RunConfig
from vae_zoo.config import load_zoo_config
from vae_zoo.export import QUANTIZATIONS
from vae_zoo.export import TOLERANCES
from vae_zoo.export import as_float32
from vae_zoo.export import convert_to_tflite
from vae_zoo.export import export_saved_model
from vae_zoo.export import parity
from vae_zoo.export import within_tolerance
from vae_zoo.export.tflite import tflite_signatures
from vae_zoo.layers import Sampling

IMAGE_SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]


def build_zoo_model(model_name, image_shape, precision="float32", **overrides):
    raw = load_zoo_config(model_name)
    raw["model"].update(overrides)
    return RunConfig.from_dict(raw).model.build(image_shape, precision=precision)


def structured_images(n, image_shape, seed=0):
    """Blurry blobs in [0, 1]: images with structure a VAE can learn in a few steps."""
    rng = np.random.default_rng(seed)
    h, w, c = image_shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    centres = rng.uniform(0.2, 0.8, size=(n, 2, c))
    d2 = (yy[None, :, :, None] - centres[:, None, None, 0]) ** 2 + (
        xx[None, :, :, None] - centres[:, None, None, 1]
    ) ** 2
    return np.exp(-d2 / 0.02).astype("float32")


def deterministic_sampling(monkeypatch):
    """Replaces eps ~ N(0, I) by a fixed function of z_mean, so that runs on 1 and 2 replicas draw
    the same eps for the same example."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = tf.stop_gradient(tf.sin(10.0 * z_mean + 1.0))
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    monkeypatch.setattr(Sampling, "call", call)


# Runs in a fresh interpreter that never imports vae_zoo: what TF Serving or a user's client sees.
RELOAD_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    folder, inputs = sys.argv[1], np.load(sys.argv[2])
    loaded = tf.saved_model.load(folder)
    outputs = {}
    for name, signature in loaded.signatures.items():
        spec = signature.structured_input_signature[1]
        outputs[name] = {"inputs": sorted(spec), "outputs": sorted(signature.structured_outputs)}
    run = loaded.signatures
    results = {
        "reconstruct": run["reconstruct"](x=tf.constant(inputs["x"]))["reconstruction"],
        "serving_default": run["serving_default"](x=tf.constant(inputs["x"]))["reconstruction"],
        "decode": run["decode"](z=tf.constant(inputs["z"]))["x_mean"],
        "sample": run["sample"](n=tf.constant(2000))["x_mean"],
    }
    encoded = run["encode"](x=tf.constant(inputs["x_repeated"]))
    results.update({f"encode_{k}": v for k, v in encoded.items()})
    np.savez(sys.argv[3], **{k: v.numpy() for k, v in results.items()})
    assert "vae_zoo" not in sys.modules
    print(json.dumps(outputs))
""")


class ZooModelChecks:
    model_name = None
    model_overrides = {}  # model config values that differ from zoo_configs/<model_name>.yaml

    def build(self, image_shape=(28, 28, 1), precision="float32"):
        return build_zoo_model(self.model_name, image_shape, precision, **self.model_overrides)

    @pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
    def test_shapes(self, image_shape):
        model = self.build(image_shape)
        x = structured_images(3, image_shape)
        outputs = model(x)
        assert outputs["z_mean"].shape == (3, model.latent_dim)
        assert outputs["z_log_var"].shape == (3, model.latent_dim)
        assert outputs["z"].shape == (3, model.latent_dim)
        assert outputs["x_params"].shape == (3, *image_shape)
        z_mean, z_log_var = model.encode(x)
        assert z_mean.shape == z_log_var.shape == (3, model.latent_dim)
        assert model.decode(z_mean).shape == (3, *image_shape)
        assert model.reconstruct(x).shape == (3, *image_shape)
        samples = keras.ops.convert_to_numpy(model.sample(5))
        assert samples.shape == (5, *image_shape)
        if model.likelihood_name == "bernoulli":
            assert samples.min() >= 0.0 and samples.max() <= 1.0

    @pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
    def test_training_lowers_the_loss(self, image_shape):
        keras.utils.set_random_seed(0)
        model = self.build(image_shape)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        x = structured_images(64, image_shape)
        history = model.fit(x, batch_size=16, epochs=4, verbose=0, shuffle=False)
        losses = history.history["loss"]
        assert np.all(np.isfinite(losses))
        assert losses[-1] < 0.9 * losses[0], losses
        for key in ("reconstruction", "kl", "elbo"):
            assert np.isfinite(history.history[key][-1])

    def test_mixed_bfloat16_trains_with_a_float32_objective_and_exports_float32(self, tmp_path):
        keras.utils.set_random_seed(0)
        model = self.build(precision="mixed_bfloat16")
        hidden = [layer for layer in model.encoder.layers + model.decoder.layers
                  if layer.weights and layer.name != "posterior"]
        assert hidden and all(layer.compute_dtype == "bfloat16" for layer in hidden)
        x = structured_images(64, (28, 28, 1))
        outputs = model(x[:4])
        assert {k: v.dtype for k, v in outputs.items()} == dict.fromkeys(outputs, tf.float32)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        losses = model.fit(x, batch_size=16, epochs=4, verbose=0, shuffle=False).history["loss"]
        assert np.all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], losses
        assert all(w.dtype == "float32" for w in model.weights)

        model.save(tmp_path / "model.keras")
        assert keras.models.load_model(tmp_path / "model.keras").dtype_policy.name == (
            "mixed_bfloat16")
        full = as_float32(model)
        assert all(layer.compute_dtype == "float32" for layer in full.decoder.layers)
        for a, b in zip(full.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        mixed_out = keras.ops.convert_to_numpy(model.reconstruct(x[:8]))
        full_out = keras.ops.convert_to_numpy(full.reconstruct(x[:8]))
        assert 0 < np.abs(full_out - mixed_out).max() < 0.05  # only bfloat16 rounding differs
        loaded = tf.saved_model.load(str(export_saved_model(model, tmp_path / "served")))
        served = loaded.signatures["reconstruct"](x=tf.constant(x[:8]))["reconstruction"]
        np.testing.assert_allclose(served.numpy(), full_out, atol=1e-5)

    def test_config_round_trip(self):
        model = self.build()
        config = model.get_config()
        clone = type(model).from_config(config)
        assert clone.get_config() == config
        assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]

    def test_saved_model_reloads_with_identical_outputs(self, tmp_path, mnist_images):
        model = self.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        model.fit(mnist_images[:64], batch_size=32, epochs=1, verbose=0)
        path = tmp_path / "model.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is type(model)
        assert loaded.get_config() == model.get_config()
        x = mnist_images[:8]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded.reconstruct(x)),
            keras.ops.convert_to_numpy(model.reconstruct(x)),
        )
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 2

    def test_one_and_two_replicas_take_the_same_step(self, monkeypatch, mnist_images):
        """The loss is averaged over the global batch, so the strategy's SUM of per-replica
        gradients equals the single-device gradient (a plain mean would double it)."""
        deterministic_sampling(monkeypatch)
        x = mnist_images[:16]
        deltas = {}
        initial = None
        for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
            # ReductionToOneDevice: the default collective all-reduce reuses instance keys across
            # strategies in one process and fails on the second model built in the session.
            strategy = tf.distribute.MirroredStrategy(
                devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
            )
            with strategy.scope():
                model = self.build()
                model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
            assert model.distribute_strategy.num_replicas_in_sync == len(devices)
            dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
            model.fit(dataset, epochs=1, verbose=0, shuffle=False)
            deltas[len(devices)] = [w - w0 for w, w0 in zip(model.get_weights(), initial)]
        moved = max(np.abs(d).max() for d in deltas[1])
        assert moved > 1e-4  # the step did something, so a factor of 2 would show
        for one, two in zip(deltas[1], deltas[2]):
            np.testing.assert_allclose(two, one, rtol=1e-3, atol=1e-6 * moved)

    # --- Export: SavedModel signatures and TFLite files -----------------------------------------

    @pytest.fixture(scope="class")
    def exported(self, tmp_path_factory, mnist_images):
        """A briefly trained model, its SavedModel version folder, and the folder it lives in."""
        keras.utils.set_random_seed(0)
        model = self.build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
        model.fit(mnist_images, batch_size=64, epochs=2, verbose=0)
        folder = tmp_path_factory.mktemp(self.model_name)
        return model, export_saved_model(model, folder / "served"), folder

    def test_saved_model_matches_keras_in_a_process_without_vae_zoo(self, exported, mnist_images):
        model, version_dir, folder = exported
        assert version_dir.name == "1" and (version_dir / "saved_model.pb").is_file()
        x = mnist_images[:8]
        z = np.random.default_rng(1).standard_normal((8, model.latent_dim)).astype("float32")
        x_repeated = np.repeat(mnist_images[:1], 2000, axis=0)
        np.savez(folder / "inputs.npz", x=x, z=z, x_repeated=x_repeated)
        result = subprocess.run(
            [sys.executable, "-c", RELOAD_SCRIPT, str(version_dir), str(folder / "inputs.npz"),
             str(folder / "outputs.npz")], capture_output=True, text=True, cwd=folder, timeout=300)
        assert result.returncode == 0, result.stderr
        signatures = json.loads(result.stdout.strip().splitlines()[-1])
        assert signatures == {
            "serving_default": {"inputs": ["x"], "outputs": ["reconstruction"]},
            "reconstruct": {"inputs": ["x"], "outputs": ["reconstruction"]},
            "encode": {"inputs": ["x"], "outputs": ["z", "z_log_var", "z_mean"]},
            "decode": {"inputs": ["z"], "outputs": ["x_mean"]},
            "sample": {"inputs": ["n"], "outputs": ["x_mean"]},
        }
        out = np.load(folder / "outputs.npz")
        reconstruction = keras.ops.convert_to_numpy(model.reconstruct(x))
        np.testing.assert_allclose(out["reconstruct"], reconstruction, atol=1e-5)
        np.testing.assert_allclose(out["serving_default"], reconstruction, atol=1e-5)
        np.testing.assert_allclose(out["decode"], keras.ops.convert_to_numpy(model.decode(z)),
                                   atol=1e-5)
        z_mean, z_log_var = (keras.ops.convert_to_numpy(t) for t in model.encode(x_repeated[:1]))
        np.testing.assert_allclose(out["encode_z_mean"][:1], z_mean, atol=1e-5)
        np.testing.assert_allclose(out["encode_z_log_var"][:1], z_log_var, atol=1e-5)
        # z is one draw from q(z|x): standardised, 2000 draws are N(0, 1) in every dimension.
        eps = (out["encode_z"] - z_mean) / np.exp(0.5 * z_log_var)
        np.testing.assert_allclose(eps.mean(axis=0), 0.0, atol=0.1)
        np.testing.assert_allclose(eps.std(axis=0), 1.0, atol=0.1)
        # sample: the average of 2000 images from the prior matches the Keras model's.
        assert out["sample"].shape == (2000, *model.image_shape)
        keras_mean = keras.ops.convert_to_numpy(model.sample(2000)).mean(axis=0)
        assert np.abs(out["sample"].mean(axis=0) - keras_mean).max() < 0.05

    @pytest.mark.parametrize("quantize", QUANTIZATIONS)
    def test_tflite_matches_the_saved_model(self, exported, mnist_images, quantize):
        from ai_edge_litert.interpreter import Interpreter

        model, version_dir, _ = exported
        x = mnist_images[64:192]
        loaded = tf.saved_model.load(str(version_dir))
        reference = loaded.signatures["reconstruct"](x=tf.constant(x))["reconstruction"].numpy()
        z = loaded.signatures["encode"](x=tf.constant(x))["z_mean"].numpy()
        representative = {
            "serving_default": [{"x": x[i : i + 1]} for i in range(32)],
            "reconstruct": [{"x": x[i : i + 1]} for i in range(32)],
            "decode": [{"z": z[i : i + 1]} for i in range(32)],
        }
        interpreter = Interpreter(model_content=convert_to_tflite(version_dir, quantize,
                                                                  representative))
        assert sorted(interpreter.get_signature_list()) == sorted(tflite_signatures(quantize))
        outputs = interpreter.get_signature_runner("reconstruct")(x=x)["reconstruction"]
        errors = parity(outputs, reference)
        assert within_tolerance(quantize, errors), (quantize, errors, TOLERANCES[quantize])
        decoded = interpreter.get_signature_runner("decode")(z=z)["x_mean"]
        reference = loaded.signatures["decode"](z=tf.constant(z))["x_mean"].numpy()
        assert within_tolerance(quantize, parity(decoded, reference))
        if quantize != "int8":
            samples = interpreter.get_signature_runner("sample")(n=np.array(1000, np.int32))
            assert samples["x_mean"].shape == (1000, *model.image_shape)
            keras_mean = keras.ops.convert_to_numpy(model.sample(1000)).mean(axis=0)
            assert np.abs(samples["x_mean"].mean(axis=0) - keras_mean).max() < 0.06
