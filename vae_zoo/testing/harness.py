"""The checks every zoo model passes. A model's test file, beside the model, names it:

    class TestConvVAE(ZooModelChecks):
        model_name = "conv_vae"

The harness talks to the model only through the `ZooModel` interface and reads its
`capabilities`: a conditional model gets labelled batches, a batch-dependent objective compares
its 2-replica step with one device's step on each half's own objective (replicas see different
batches, hence different objectives) unless the test class says the model computes it over the
global batch, the density checks run only where `has_density`, and a model with several training
stages trains each stage in turn (`train_stages`) and takes the 1-vs-2-replica step in every
stage. A model with several optimizers (`optimizer_variables`) also gets: each optimizer moves
only its own variables, every optimizer's state survives `.keras` files, and a run resumed from a
step checkpoint ends where an
uninterrupted one does.
"""

import json
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.config import RunConfig
from vae_zoo.config import load_zoo_config
from vae_zoo.data import DataSpec
from vae_zoo.export import QUANTIZATIONS
from vae_zoo.export import CODE_AGREEMENT
from vae_zoo.export import TOLERANCES
from vae_zoo.export import as_float32
from vae_zoo.export import calibration_inputs
from vae_zoo.export import convert_to_tflite
from vae_zoo.export import export_saved_model
from vae_zoo.export import parity
from vae_zoo.export import within_tolerance
from vae_zoo.layers import Sampling
from vae_zoo.training.checkpoints import StepCheckpoint
from vae_zoo.training.checkpoints import latest_checkpoint
from vae_zoo.training.checkpoints import restore
from vae_zoo.training.loop import TrainingLoop

IMAGE_SHAPES = [(28, 28, 1), (32, 32, 3), (64, 64, 3)]
# Training runs on the odd grey shape and the largest colour one; the interface checks all three.
TRAINED_SHAPES = [IMAGE_SHAPES[0], IMAGE_SHAPES[2]]
NUM_CLASSES = 10
STOCHASTIC_DRAWS = 2000
TRAIN_SIZE = 512  # N of the harness's data (the `mnist_images` fixture), for models that need it


def build_zoo_model(model_name, image_shape, precision="float32", num_classes=None,
                    train_size=TRAIN_SIZE, **overrides):
    raw = load_zoo_config(model_name)
    raw["model"].update(overrides)
    spec = DataSpec(tuple(image_shape), num_classes=num_classes, train_size=train_size)
    return RunConfig.from_dict(raw).model.build(spec, precision=precision)


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


def fixed_noise(monkeypatch, eps):
    """Makes every `Sampling` draw use `eps` as its N(0, I) noise (reshaped to the draw's shape,
    e.g. `(k, batch, latent)`, or one number for every element), so that a test computes the same
    z by hand."""

    def call(self, inputs, seed=None):
        z_mean, z_log_var = inputs
        if np.ndim(eps) == 0:  # one value for every draw, e.g. 0: z is the mean
            return z_mean + tf.exp(0.5 * z_log_var) * tf.cast(eps, z_mean.dtype)
        noise = tf.reshape(tf.constant(eps, z_mean.dtype), tf.shape(z_mean))
        return z_mean + tf.exp(0.5 * z_log_var) * noise

    monkeypatch.setattr(Sampling, "call", call)


def assert_sgd_step_lands_on(model, x, expected, optimizer_names, learning_rate=0.05):
    """One `train_step` on `x` with every optimizer of `optimizer_names` plain SGD at
    `learning_rate` moves each trainable variable exactly to `expected[id(variable)]` (the
    values a test computed from each optimizer's own loss); every variable must be in
    `expected`, so none is left out or trained twice."""
    model.compile(**{name: keras.optimizers.SGD(learning_rate) for name in optimizer_names},
                  jit_compile=False)
    model.train_step({"x": tf.constant(x)})
    assert sorted(expected) == sorted(id(v) for v in model.trainable_variables)
    for v in model.trainable_variables:
        np.testing.assert_allclose(v.numpy(), expected[id(v)], rtol=1e-4, atol=1e-6,
                                   err_msg=v.path)


def leaf_layers(layer):
    """Every layer with no sublayers inside `layer`, however deeply nested."""
    children = [l for l in getattr(layer, "layers", []) if l is not layer]
    if not children:
        return [layer]
    return [leaf for child in children for leaf in leaf_layers(child)]


def assert_same_distribution(draws, reference, what, quantize="none"):
    """Two sets of draws (axis 0) agree: constant outputs within the `quantize` mode's tolerance,
    random ones in mean and spread."""
    draws, reference = np.asarray(draws, "float64"), np.asarray(reference, "float64")
    assert draws.shape == reference.shape, what
    spread = reference.std(axis=0)
    if spread.max() < 1e-6:
        errors = parity(draws, reference)
        assert within_tolerance(quantize, errors), (what, errors, TOLERANCES[quantize])
        return
    # 2000 draws: the difference of two means has a standard error of 0.032 spreads.
    assert (np.abs(draws.mean(axis=0) - reference.mean(axis=0)) <= 0.15 * spread + 0.01).all(), what
    ratio = draws.std(axis=0)[spread > 1e-3] / spread[spread > 1e-3]
    assert (np.abs(ratio - 1) < 0.15).all(), (what, ratio.min(), ratio.max())


def train_stages(model, batches, epochs, learning_rate=1e-3):
    """Fits every training stage of `model` in turn, as `train.py` does (a fresh optimizer per
    stage); returns each stage's Keras history."""
    histories = []
    for stage in range(model.capabilities.stages):
        if stage:
            model.begin_stage(stage)
            model.compile(**model.make_optimizers(learning_rate), jit_compile=False)
        histories.append(model.fit(batches, epochs=epochs, verbose=0, shuffle=False).history)
    return histories


def numpy_outputs(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


# Runs in an interpreter that never imports vae_zoo (what TF Serving or a user's client sees),
# one per test process, fed a SavedModel's paths a line at a time (`reload_without_vae_zoo`).
RELOAD_LOOP = textwrap.dedent("""
    import json, sys, traceback
    import numpy as np
    import tensorflow as tf

    def reload(folder, inputs, outputs_path):
        loaded = tf.saved_model.load(folder)
        signatures, results = {}, {}
        for name, signature in loaded.signatures.items():
            spec = signature.structured_input_signature[1]
            signatures[name] = {"inputs": sorted(spec),
                                "outputs": sorted(signature.structured_outputs)}
            outputs = signature(**{k: tf.constant(inputs[f"{name}/{k}"]) for k in spec})
            results.update({f"{name}/{k}": v.numpy() for k, v in outputs.items()})
        np.savez(outputs_path, **results)
        return signatures

    for line in sys.stdin:
        folder, inputs_path, outputs_path = json.loads(line)
        try:
            answer = {"signatures": reload(folder, np.load(inputs_path), outputs_path)}
            assert "vae_zoo" not in sys.modules
        except Exception:
            answer = {"error": traceback.format_exc()}
        print("ANSWER " + json.dumps(answer), flush=True)
""")
_reloader = None  # this test process's process without vae_zoo, started on first use


def reload_without_vae_zoo(version_dir, inputs_path, outputs_path, timeout=300):
    """Loads the SavedModel in `version_dir` in a Python process that never imported vae_zoo
    and calls each signature on the arrays `<signature>/<input>` of `inputs_path` (.npz); their
    outputs go to `outputs_path` (.npz). Returns `{signature: {"inputs", "outputs"}}` (names).
    One such process serves every model of a test process: TensorFlow's import (5 s) once."""
    import atexit
    import select
    import tempfile

    global _reloader
    if _reloader is None or _reloader.poll() is not None:
        _reloader = subprocess.Popen(
            [sys.executable, "-c", RELOAD_LOOP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, cwd=tempfile.gettempdir())
        atexit.register(_reloader.kill)
    _reloader.stdin.write(json.dumps([str(version_dir), str(inputs_path), str(outputs_path)])
                          + "\n")
    _reloader.stdin.flush()
    while select.select([_reloader.stdout], [], [], timeout)[0]:
        line = _reloader.stdout.readline()
        if not line:
            break
        if line.startswith("ANSWER "):
            answer = json.loads(line[len("ANSWER "):])
            assert "error" not in answer, answer.get("error")
            return answer["signatures"]
    _reloader.kill()
    raise AssertionError(f"the process without vae_zoo gave no answer in {timeout} s")


class ZooModelChecks:
    model_name = None
    model_overrides = {}  # model config values that differ from zoo_configs/<model_name>.yaml
    # False for a variant that changes only the objective of a model whose export is tested in
    # another class (same networks, same endpoints): its SavedModel and TFLite files are the same.
    check_export = True
    # True for a batch-dependent objective computed over the global batch (gathered across
    # replicas), so that one step on 2 replicas still equals one on one device.
    global_batch_objective = False
    # The tracked term that a few epochs of training must lower. `loss` but for a model whose
    # loss is the value of a game (an adversarial one: its discriminator's features and logits
    # change under it), which names a term that measures the fit in a fixed space.
    lowered_metric = "loss"
    # The TFLite modes converted and checked. Dynamic-range and float16 files quantise only the
    # weights of the dense and convolution layers every family shares, with the ops of the
    # float file: the conv and dense networks (vae_test.py) and a model with an exclusion of its
    # own in those modes (ae) check all four; int8 (activations calibrated, every op quantised)
    # and the float file run on every family.
    tflite_modes = ("none", "int8")

    def build(self, image_shape=(28, 28, 1), precision="float32"):
        model_class = RunConfig.from_dict(load_zoo_config(self.model_name)).model.model_class()
        num_classes = NUM_CLASSES if model_class.capabilities.conditional else None
        return build_zoo_model(self.model_name, image_shape, precision, num_classes,
                               **self.model_overrides)

    def examples(self, model, x, seed=0):
        """Example dicts for `x`, with labels when the model is conditional."""
        examples = {"x": x}
        if model.capabilities.conditional:
            examples["y"] = np.random.default_rng(seed).integers(NUM_CLASSES, size=len(x))
        return examples

    def batches(self, model, x, batch_size):
        return tf.data.Dataset.from_tensor_slices(self.examples(model, x)).batch(batch_size)

    def compiled(self, learning_rate=1e-3, seed=0):
        """A freshly built model compiled with every optimizer of its `make_optimizers`."""
        keras.utils.set_random_seed(seed)
        model = self.build()
        model.compile(**model.make_optimizers(learning_rate), jit_compile=False)
        return model

    def skip_unless_several_optimizers(self):
        if len(self.build().optimizer_variables()) < 2:
            pytest.skip("one optimizer: checked above and in tests/test_fault_tolerance.py")

    def stochastic_inputs(self, model, examples):
        """The inputs of each random endpoint, repeated so that its outputs can be compared as
        distributions: one example 2000 times, or 2000 samples."""
        repeated = {}
        for name, inputs in examples.items():
            if name in model.deterministic_endpoints:
                continue
            repeated[name] = {
                k: np.array(STOCHASTIC_DRAWS, v.dtype) if v.ndim == 0
                else np.repeat(v[:1], STOCHASTIC_DRAWS, axis=0)
                for k, v in inputs.items()
            }
        return repeated

    @pytest.mark.parametrize("image_shape", IMAGE_SHAPES)
    def test_interface_shapes(self, image_shape):
        model = self.build(image_shape)
        x = structured_images(3, image_shape)
        code = keras.ops.convert_to_numpy(model.representation(x))
        assert code.shape[0] == 3 and code.dtype == np.float32
        assert model.decode(code).shape == (3, *image_shape)
        assert model.reconstruct(x).shape == (3, *image_shape)
        samples = keras.ops.convert_to_numpy(model.sample(5))
        assert samples.shape == (5, *image_shape)
        if not model.continuous_observations:
            assert samples.min() >= 0.0 and samples.max() <= 1.0
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.sample(4, seed=3)),
                                      keras.ops.convert_to_numpy(model.sample(4, seed=3)))
        terms = model.loss_terms(self.examples(model, x), model(self.examples(model, x)))
        assert {"loss", *model.metric_names} <= set(terms)
        assert all(terms[name].shape == (3,) for name in ("loss", *model.metric_names))
        for name, (images, columns) in model.family_pictures().items():
            images = np.asarray(images)
            assert images.shape[1:] == image_shape and columns >= 1, name
            assert images.min() >= 0.0 and images.max() <= 1.0, name
        if model.capabilities.has_density:
            assert model.posterior(x).batch_shape == (3,)
            weights = model.log_importance_weights(x, 7)
            assert weights.shape == (7, 3) and np.isfinite(weights.numpy()).all()

    @pytest.mark.parametrize("image_shape", TRAINED_SHAPES)
    def test_training_lowers_the_loss(self, image_shape):
        if image_shape != TRAINED_SHAPES[0] and not self.check_export:
            pytest.skip(f"{type(self).__name__} changes only the objective: its networks train "
                        "on the other image shapes in its family's exported model")
        keras.utils.set_random_seed(0)
        model = self.build(image_shape)
        model.compile(**model.make_optimizers(1e-3), jit_compile=False)
        x = structured_images(64, image_shape)
        history = model.fit(self.batches(model, x, 16), epochs=4, verbose=0, shuffle=False)
        assert np.all(np.isfinite(history.history["loss"]))
        losses = history.history[self.lowered_metric]
        assert np.all(np.isfinite(losses))
        assert losses[-1] < 0.9 * losses[0], losses
        for key in model.metric_names:
            assert np.isfinite(history.history[key][-1])
        assert int(model.steps_trained.numpy()) == 16  # 4 epochs of 4 batches
        for stage in range(1, model.capabilities.stages):  # each later stage lowers its own loss
            model.begin_stage(stage)
            model.compile(**model.make_optimizers(1e-3), jit_compile=False)
            history = model.fit(self.batches(model, x, 16), epochs=4, verbose=0, shuffle=False)
            losses = history.history["loss"]
            assert np.all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], (stage, losses)
            assert set(history.history) == set(model.tracked_terms())

    def test_mixed_bfloat16_trains_with_a_float32_objective_and_exports_float32(self, tmp_path):
        keras.utils.set_random_seed(0)
        model = self.build(precision="mixed_bfloat16")
        assert any(layer.compute_dtype == "bfloat16" for layer in leaf_layers(model) if layer.weights)
        x = structured_images(64, (28, 28, 1))
        examples = self.examples(model, x[:4])
        terms = model.loss_terms(examples, model(examples))
        assert {k: v.dtype for k, v in terms.items()} == dict.fromkeys(terms, tf.float32)
        assert model.decode(model.representation(x[:4])).dtype == tf.float32
        model.compile(**model.make_optimizers(1e-3), jit_compile=False)
        history = model.fit(self.batches(model, x, 16), epochs=4, verbose=0).history
        losses = history[self.lowered_metric]
        assert np.all(np.isfinite(history["loss"]))
        assert np.all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], losses
        assert all(w.dtype in ("float32", "int64") for w in model.weights)

        model.save(tmp_path / "model.keras")
        assert keras.models.load_model(tmp_path / "model.keras").dtype_policy.name == (
            "mixed_bfloat16")
        if not self.check_export:  # its networks export float32 in the family's exported model
            return
        full = as_float32(model)
        assert all(layer.compute_dtype == "float32" for layer in leaf_layers(full) if layer.weights)
        for a, b in zip(full.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        # The endpoint's own example inputs: x, plus the label y of a conditional model.
        inputs = model.endpoint_examples(x[:8])["reconstruct"]
        mixed_out = numpy_outputs(model.serving_endpoints()["reconstruct"][0](**inputs))
        full_out = numpy_outputs(full.serving_endpoints()["reconstruct"][0](**inputs))
        mixed_out, full_out = mixed_out["reconstruction"], full_out["reconstruction"]
        assert 0 < np.abs(full_out - mixed_out).max() < 0.05  # only bfloat16 rounding differs
        loaded = tf.saved_model.load(str(export_saved_model(model, tmp_path / "served")))
        served = loaded.signatures["reconstruct"](
            **{k: tf.constant(v) for k, v in inputs.items()})["reconstruction"]
        np.testing.assert_allclose(served.numpy(), full_out, atol=1e-5)

    def test_config_round_trip(self):
        model = self.build()
        config = model.get_config()
        clone = type(model).from_config(config)
        assert clone.get_config() == config
        assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]

    def test_keras_file_reloads_with_identical_outputs_and_training_state(self, tmp_path,
                                                                          mnist_images):
        model = self.build()
        model.compile(**model.make_optimizers(1e-3), jit_compile=False)
        model.fit(self.batches(model, mnist_images[:64], 32), epochs=1, verbose=0)
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
        for name in model.optimizer_variables():  # every optimizer's state, a second one's too
            ours, theirs = getattr(loaded, name), getattr(model, name)
            assert type(ours) is type(theirs) and ours.get_config() == theirs.get_config(), name
            assert int(ours.iterations) == int(theirs.iterations) == 2, name
            assert len(ours.variables) == len(theirs.variables) > 1, name
            for a, b in zip(ours.variables, theirs.variables):
                np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{name}: {a.path}")
        assert int(loaded.steps_trained) == 2

    def test_one_and_two_replicas_take_the_same_step(self, mnist_images, monkeypatch):
        """The loss is averaged over the global batch, so the strategy's SUM of per-replica
        gradients equals the single-device gradient (a plain mean would double it); the training
        noise is a function of the step and the example's row in the global batch, so both draw
        the same noise for the same example.

        A batch-dependent objective (minibatch estimators) is computed by each replica on its
        own half: its 2-replica step must equal one device's step on the mean of the two halves'
        objectives, each averaged over the global batch. The noise is zero there, so that one
        device computes each half exactly as its replica does.
        """
        model_class = RunConfig.from_dict(load_zoo_config(self.model_name)).model.model_class()
        per_replica = (model_class.capabilities.batch_dependent_objective
                       and not self.global_batch_objective)
        if per_replica:
            fixed_noise(monkeypatch, 0.0)
        for stage in range(model_class.capabilities.stages):
            self.check_one_and_two_replicas(mnist_images[:16], stage, per_replica)

    def check_one_and_two_replicas(self, x, stage, per_replica=False):
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
                model.compile(**{name: keras.optimizers.SGD(0.1)
                                 for name in model.optimizer_variables()}, jit_compile=False)
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
            if stage:
                model.begin_stage(stage)
            assert model.distribute_strategy.num_replicas_in_sync == len(devices)
            model.fit(self.batches(model, x, 16), epochs=1, verbose=0, shuffle=False)
            deltas[len(devices)] = [w - w0 for w, w0 in zip(model.get_weights(), initial)]
            assert int(model.steps_trained.numpy()) == 1
        moved = max(np.abs(d).max() for d in deltas[1])
        assert moved > 1e-4, stage  # the step did something, so a factor of 2 would show
        expected = deltas[1]
        if per_replica:
            halves = self.step_on_halves(initial, self.examples(model, x), 0.1, stage)
            # The step counter (not trainable) moves as on one device.
            expected = [one if h is None else h for one, h in zip(deltas[1], halves)]
        for one, two in zip(expected, deltas[2]):
            np.testing.assert_allclose(two, one, rtol=1e-3, atol=1e-6 * moved, err_msg=stage)

    def step_on_halves(self, initial, examples, learning_rate, stage=0):
        """One SGD step's changes of the trainable weights (None for the others) on one device,
        from each half's own objective summed over its examples and divided by the global batch:
        what two replicas compute."""
        model = self.build()
        model.set_weights(initial)
        if stage:
            model.begin_stage(stage)
        size = len(examples["x"])
        halves = [{k: v[:size // 2] for k, v in examples.items()},
                  {k: v[size // 2:] for k, v in examples.items()}]
        with tf.GradientTape() as tape:
            per_example = tf.concat(
                [model.loss_terms(h, model(h, training=True))["loss"] for h in halves], 0)
            loss = tf.reduce_sum(per_example) / size
        whole = model.loss_terms(examples, model(examples, training=True))["loss"]
        assert np.abs(whole.numpy() - per_example.numpy()).max() > 1e-6 * np.abs(whole).max(), (
            "declared batch-dependent, but the halves' objective is the whole batch's")
        variables = model.trainable_weights
        changes = {id(v): -learning_rate * g.numpy()
                   for v, g in zip(variables, tape.gradient(loss, variables))}
        return [changes.get(id(w)) for w in model.weights]

    # --- Models with several optimizers ----------------------------------------------------------

    def test_each_optimizer_moves_only_its_own_variables(self, mnist_images):
        """One step with all but one optimizer at learning rate 0: exactly that optimizer's
        variables move, all of them (Adam at rate 0 moves nothing, whatever its gradient)."""
        self.skip_unless_several_optimizers()
        for name in self.build().optimizer_variables():
            model = self.compiled()
            owned = {key: {id(v) for v in variables}
                     for key, variables in model.optimizer_variables().items()}
            assert sum(map(len, owned.values())) == len(set().union(*owned.values())), "overlap"
            assert set().union(*owned.values()) == {id(v) for v in model.trainable_variables}
            for other in owned:
                if other != name:
                    getattr(model, other).learning_rate = 0.0
            before = {id(v): v.numpy() for v in model.trainable_variables}
            model.fit(self.batches(model, mnist_images[:16], 16), epochs=1, verbose=0)
            for v in model.trainable_variables:
                moved = not np.array_equal(v.numpy(), before[id(v)])
                assert moved == (id(v) in owned[name]), (name, v.path, moved)

    def test_a_run_resumed_from_a_step_checkpoint_ends_where_an_uninterrupted_one_does(
            self, tmp_path, mnist_images):
        """Every optimizer's state goes into the step checkpoint and comes back (`restore`
        builds them all): stopped mid-epoch after step 2 and resumed in a fresh model, 2 epochs
        of 3 steps end with the weights and optimizer states of a run that never stopped."""
        self.skip_unless_several_optimizers()
        strategy = tf.distribute.get_strategy()
        model = self.compiled()
        dataset = self.batches(model, mnist_images[:48], 16)

        def batches(epoch, start_step=0, shard=None, epochs=1):  # the same 3 batches each epoch
            return dataset.skip(start_step).concatenate(dataset.repeat(epochs - 1))

        TrainingLoop(model, strategy).fit(batches, epochs=2, steps_per_epoch=3, verbose=0)
        expected = {name: [v.numpy() for v in getattr(model, name).variables]
                    for name in model.optimizer_variables()}
        expected_weights = model.get_weights()

        model = self.compiled()
        loop = TrainingLoop(model, strategy)

        class StopAfterStep2(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                self.model.stop_training = loop.global_step() == 2

        loop.fit(batches, epochs=2, steps_per_epoch=3, verbose=0,
                 callbacks=[StepCheckpoint(tmp_path, loop, every=2), StopAfterStep2()])
        path, state = latest_checkpoint(tmp_path)
        assert (state["epoch"], state["step"], state["global_step"]) == (0, 2, 2)

        model = self.compiled(seed=1)  # other initial weights: the checkpoint must set them all
        restore(model, path)
        assert int(model.steps_trained) == 2
        TrainingLoop(model, strategy).fit(batches, epochs=2, steps_per_epoch=3, verbose=0,
                                          initial_epoch=0, initial_step=2)
        assert int(model.steps_trained) == 6
        for a, b in zip(model.get_weights(), expected_weights):
            np.testing.assert_array_equal(a, b)
        for name, values in expected.items():
            assert int(getattr(model, name).iterations) == 6, name
            ours = [v.numpy() for v in getattr(model, name).variables]
            assert len(ours) == len(values), name
            for a, b in zip(ours, values):
                np.testing.assert_array_equal(a, b, err_msg=name)

    # --- Export: SavedModel signatures and TFLite files -----------------------------------------

    @pytest.fixture(scope="class")
    def exported(self, tmp_path_factory, mnist_images):
        """A briefly trained model, its SavedModel version folder, and the folder it lives in."""
        if not self.check_export:
            pytest.skip(f"{type(self).__name__} changes only the objective; its export is tested "
                        "with the same networks elsewhere")
        keras.utils.set_random_seed(0)
        model = self.build()
        model.compile(**model.make_optimizers(1e-3), jit_compile=False)
        train_stages(model, self.batches(model, mnist_images, 64), epochs=2)
        folder = tmp_path_factory.mktemp(self.model_name)
        return model, export_saved_model(model, folder / "served"), folder

    def test_saved_model_matches_keras_in_a_process_without_vae_zoo(self, exported, mnist_images):
        model, version_dir, folder = exported
        assert version_dir.name == "1" and (version_dir / "saved_model.pb").is_file()
        endpoints = model.serving_endpoints()
        examples = model.endpoint_examples(mnist_images[:8])
        stochastic = self.stochastic_inputs(model, examples)
        inputs = {**{name: examples[name] for name in model.deterministic_endpoints}, **stochastic}
        np.savez(folder / "inputs.npz",
                 **{f"{name}/{k}": v for name, values in inputs.items() for k, v in values.items()})
        signatures = reload_without_vae_zoo(version_dir, folder / "inputs.npz",
                                            folder / "outputs.npz")
        out = np.load(folder / "outputs.npz")
        assert sorted(signatures) == sorted(endpoints)
        for name, values in inputs.items():
            expected = numpy_outputs(endpoints[name][0](**values))
            assert signatures[name] == {"inputs": sorted(values), "outputs": sorted(expected)}
            for key, value in expected.items():
                if name in model.deterministic_endpoints:
                    np.testing.assert_allclose(out[f"{name}/{key}"], value, atol=1e-5)
                    assert out[f"{name}/{key}"].dtype == value.dtype, (name, key)
                else:
                    assert_same_distribution(out[f"{name}/{key}"], value, f"{name}/{key}")

    @pytest.mark.parametrize("quantize", QUANTIZATIONS)
    def test_tflite_matches_the_saved_model(self, exported, mnist_images, quantize):
        from ai_edge_litert.interpreter import Interpreter

        if quantize not in self.tflite_modes:
            pytest.skip(f"{quantize} quantises the weights every family shares: checked on "
                        "conv_vae, dense_vae and ae")
        model, version_dir, _ = exported
        loaded = tf.saved_model.load(str(version_dir))
        examples = model.endpoint_examples(mnist_images[64:192])
        excluded = model.tflite_exclusions(quantize)
        for name, reason in excluded.items():  # recorded in pytest's warnings summary
            warnings.warn(f"{self.model_name}: the {quantize} TFLite file leaves out {name}: "
                          f"{reason}")
        deterministic = [e for e in model.deterministic_endpoints if e not in excluded]
        representative = calibration_inputs(examples, deterministic, count=32)
        interpreter = Interpreter(model_content=convert_to_tflite(
            version_dir, quantize, representative, exclude=tuple(excluded)))
        expected_signatures = deterministic if quantize == "int8" else [
            e for e in model.serving_endpoints() if e not in excluded]
        assert sorted(interpreter.get_signature_list()) == sorted(expected_signatures)
        for name in deterministic:
            outputs = interpreter.get_signature_runner(name)(**examples[name])
            reference = loaded.signatures[name](
                **{k: tf.constant(v) for k, v in examples[name].items()})
            for key, value in reference.items():
                # Integer outputs (codes): the fraction equal, at least CODE_AGREEMENT[quantize].
                errors = parity(outputs[key], value.numpy())
                assert within_tolerance(quantize, errors, model.capabilities.discrete_codes), (
                    name, key, errors, TOLERANCES[quantize], CODE_AGREEMENT[quantize])
        # Random endpoints as distributions of 2000 draws in the float modes; dynamic-range
        # kernels take ~40 s for those draws on CPU and quantise the same graph, and int8 files
        # hold only the deterministic endpoints.
        if quantize in ("none", "float16"):
            for name, inputs in self.stochastic_inputs(model, examples).items():
                outputs = interpreter.get_signature_runner(name)(**inputs)
                expected = numpy_outputs(model.serving_endpoints()[name][0](**inputs))
                for key, value in expected.items():
                    assert_same_distribution(outputs[key], value, f"{quantize} {name}/{key}",
                                             quantize)
