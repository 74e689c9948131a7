"""The zoo's model interface: what evaluation, pictures, export and the harness may rely on.

Shared code talks to a model only through the methods of `ZooModel`; everything else (networks,
heads, the names of its outputs) is the model family's own business. A family overrides what its
objective and probability model change, and declares what it can do in `capabilities`.
"""

import dataclasses
import inspect

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.config.schema import length_in_steps
from vae_zoo.registry import Registry

MODELS = Registry("model class")


def register_model(cls):
    """Class decorator: a zoo model by its class name (`class_name` in a zoo config), and
    serialisable by Keras so that `.keras` files load after `import vae_zoo`."""
    keras.saving.register_keras_serializable(package="vae_zoo")(cls)
    return MODELS.register()(cls)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a model family can do, so shared code and the harness ask instead of assuming.

    Args:
        conditional: the model needs labels `y` in its batches (and `sample` takes labels).
        batch_dependent_objective: one example's loss depends on the others in its batch
            (minibatch estimators): replicas then see different objectives than one device.
        has_density: `log_importance_weights` is defined, so the ELBO and the IW NLL apply.
        stages: how many training stages one `train.py` run goes through (a learned prior
            trained after the autoencoder is a second stage): see `ZooModel.begin_stage`.
        discrete_codes: `codes(x)` gives integer codes in [0, `num_codes`) (a codebook), so
            codebook usage applies.
    """

    conditional: bool = False
    batch_dependent_objective: bool = False
    has_density: bool = True
    stages: int = 1
    discrete_codes: bool = False


class ZooModel(keras.Model):
    """Base class of every zoo model: the training step, the loss bookkeeping, and the interface.

    The objective is per example: `loss_terms` returns named per-example tensors, one of them
    `"loss"`; the batch loss is their mean over the *global* batch, so gradients are the same on
    one device and on N replicas. Every name in `metric_names` gets a tracker, so training logs and
    evaluation keys follow the model. `train_step` and `test_step` are the model's own and run
    under `fit` or under `strategy.run` alike; `steps_trained` counts optimizer steps for the
    objective's schedules (it is saved with the weights).

    Subclasses implement the probability interface below and list their data arguments (taken
    from the dataset's `DataSpec`, never from a config) in `data_arguments`.

    A model with `capabilities.stages > 1` trains in stages, one after the other (the trainer
    calls `begin_stage`): each stage has its own objective and tracked terms
    (`stage_metric_names`), and a fresh optimizer over all trainable weights. The weights a stage
    does not train get zero gradients, so Adam, whose moments start at zero, leaves them exactly
    as they are: a frozen stage stays frozen, and every stage's optimizer has the same variables,
    which a checkpoint restores whatever the stage.

    Args:
        image_shape: tuple of ints. Shape of one input `x`.
        **kwargs: `keras.Model` arguments (`name`, `dtype`).
    """

    capabilities = Capabilities()
    data_arguments = ("image_shape",)
    metric_names = ()  # per-example terms tracked beside "loss" (in the first stage)
    stage_names = ("model",)  # one name per training stage, for logs and files
    stage_metric_names = {}  # {stage: terms tracked beside "loss"} for the stages after the first
    stage = 0  # the stage that `train_step` trains (`begin_stage`)
    # {constructor argument: stage}: the lengths of the objective's schedules and the stage whose
    # steps they count (`resolve_schedule_lengths`).
    schedule_lengths = {}
    seed = 0  # the run's seed, set by the trainer; with `steps_trained` it seeds training noise

    def __init__(self, image_shape, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.steps_trained = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, name="steps_trained",
            aggregation="only_first_replica",
        )
        names = dict.fromkeys(("loss", *self.metric_names,
                               *(n for names in self.stage_metric_names.values() for n in names)))
        self.term_trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @classmethod
    def from_data_spec(cls, spec, **kwargs):
        """Builds the model for a dataset's `DataSpec` plus its config arguments."""
        return cls(**{name: getattr(spec, name) for name in cls.data_arguments}, **kwargs)

    # --- Batches ----------------------------------------------------------------------------

    @staticmethod
    def as_batch(data):
        """A batch as a dict with `x` (and `y`/`factors`), from a dict, an `(x, y)` tuple or `x`."""
        if isinstance(data, dict):
            return data
        if isinstance(data, (tuple, list)):
            batch = dict(ZooModel.as_batch(data[0]))
            if len(data) > 1 and data[1] is not None:
                batch.setdefault("y", data[1])
            return batch
        return {"x": data}

    # --- Training stages ---------------------------------------------------------------------

    def begin_stage(self, stage):
        """Makes the following steps train stage `stage` (0-based) and track its terms.

        Step functions traced for another stage are dropped; the caller compiles a fresh
        optimizer when the stage starts (not when it resumes from a checkpoint).
        """
        if not 0 <= stage < self.capabilities.stages:
            raise ValueError(f"{type(self).__name__} has {self.capabilities.stages} stage(s), "
                             f"not a stage {stage}")
        self.stage = int(stage)
        self.train_function = self.test_function = self.predict_function = None

    def tracked_terms(self):
        """The per-example terms the current stage tracks: "loss" first."""
        if self.stage == 0:
            return ("loss", *self.metric_names)
        return ("loss", *self.stage_metric_names[self.stage])

    # --- The objective and the training step ------------------------------------------------

    def loss_terms(self, batch, outputs):
        """Per-example named terms of the objective: `{"loss": ..., **metric_names}`."""
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.loss_terms(self.as_batch(x), y_pred)
        per_example = terms["loss"]
        if self.losses:
            terms = {**terms, "loss": per_example + tf.add_n(self.losses)}
        for name in self.tracked_terms():
            self.term_trackers[name].update_state(terms[name])
        return self.average_loss(per_example)

    def average_loss(self, per_example):
        """The batch loss of per-example losses, plus the layers' regularisation losses: the sum
        divided by the global batch (local batch * replicas), since the strategy SUMs gradients."""
        loss = tf.nn.compute_average_loss(per_example)
        if self.losses:
            loss += tf.nn.scale_regularization_loss(tf.add_n(self.losses))
        return loss

    def train_step(self, data):
        batch = self.as_batch(data)
        with tf.GradientTape() as tape:
            outputs = self(batch, training=True)
            loss = self.compute_loss(x=batch, y_pred=outputs)
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_weights
        # Zero, not None, for the weights this stage does not train (see the class docstring).
        gradients = [tf.zeros(v.shape, v.dtype) if g is None else g
                     for g, v in zip(tape.gradient(scaled, variables), variables)]
        self.optimizer.apply(gradients, variables)
        self.steps_trained.assign_add(1)
        return self.get_metrics_result()

    def test_step(self, data):
        batch = self.as_batch(data)
        self.compute_loss(x=batch, y_pred=self(batch, training=False), training=False)
        return self.get_metrics_result()

    @property
    def metrics(self):
        return [self.term_trackers[name] for name in self.tracked_terms()]

    def noise_seed(self, stream=0):
        """A stateless seed for the training noise of this step: `(seed, step * 16 + stream)`.

        The noise then depends only on the run's seed and the step, not on how many draws came
        before, so a run resumed from a checkpoint draws exactly what it would have drawn.
        `stream` tells apart up to 16 independent draws within one step.
        """
        step = tf.cast(self.steps_trained, tf.int64) * 16 + stream
        return tf.stack([tf.constant(self.seed, tf.int64), step])

    def make_optimizers(self, learning_rate):
        """`compile` arguments holding every optimizer the model's step uses."""
        return {"optimizer": keras.optimizers.Adam(learning_rate)}

    def optimizer_variables(self):
        """`{name: variables}`: every optimizer of the step by its `compile` argument (an
        attribute of the model after `compile`) and the variables it trains. A model with a
        second optimizer (a discriminator's) names it here and in `make_optimizers`."""
        return {"optimizer": self.trainable_variables}

    def build_optimizers(self):
        """Creates every optimizer's state, so that a checkpoint's or `.keras` file's loads."""
        for name, variables in self.optimizer_variables().items():
            optimizer = getattr(self, name, None)
            if optimizer is not None and not optimizer.built:
                optimizer.build(variables)

    def compile(self, optimizer="rmsprop", **kwargs):
        """Keras' `compile`, plus the step's other optimizers (`optimizer_variables` names them):
        each becomes an attribute of the model, so `.keras` files and step checkpoints hold its
        state beside the first one's (the Keras GAN examples' pattern), and each is wrapped for
        loss scaling under `mixed_float16` as Keras wraps the first."""
        others = {name: kwargs.pop(name, None) for name in self.optimizer_variables()
                  if name != "optimizer"}
        super().compile(optimizer=optimizer, **kwargs)
        for name, other in others.items():
            if other is None:
                raise ValueError(f"{type(self).__name__}.compile needs `{name}` too "
                                 f"(`make_optimizers` returns every optimizer)")
            other = keras.optimizers.get(other)
            if (kwargs.get("auto_scale_loss", True) and self.dtype_policy.name == "mixed_float16"
                    and not isinstance(other, keras.optimizers.LossScaleOptimizer)):
                other = keras.optimizers.LossScaleOptimizer(other, name=f"{name}_loss_scale")
            setattr(self, name, other)
        self._compile_config.config.update(others)

    def compile_from_config(self, config):
        """Compiles a loaded model with every optimizer and builds them all, so that a `.keras`
        file's optimizer states load into them (Keras skips models with their own `compile`)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.build_optimizers()

    def schedule_values(self):
        """Scalars of the objective worth logging each epoch (beta, capacity, ...)."""
        return {}

    @classmethod
    def schedules_in_use(cls, args):
        """The names in `schedule_lengths` whose schedule the constructor arguments `args` turn
        on (a length of a schedule left off warns of nothing)."""
        return set(cls.schedule_lengths)

    @classmethod
    def resolve_schedule_lengths(cls, args, stage_steps):
        """`(args, warnings)`: the constructor arguments `args` with every schedule length in
        optimizer steps, and one line for each schedule in use that cannot finish in its stage.

        A length is a fraction of the run when written as a number <= 1 with a decimal point
        (`0.5`: the first half of the stage's training steps), and steps otherwise (`10000`,
        `1e4`). One key with two readings, rather than a second key, because a config then
        cannot hold a fraction and steps that disagree, and the run's config.yaml holds the
        resolved steps under the same key, which resume and every worker read back unchanged.

        Args:
            args: dict. Constructor arguments (a config's `model` section, less name and class).
            stage_steps: list of ints. The training steps of each stage of the run.
        """
        resolved, warnings = dict(args), []
        for name, stage in cls.schedule_lengths.items():
            value = args.get(name, cls.default_argument(name))
            steps, run_steps = length_in_steps(value, stage_steps[stage]), stage_steps[stage]
            resolved[name] = steps
            if steps > run_steps and name in cls.schedules_in_use(args):
                warnings.append(
                    f"warning: model.{name}={steps} but the run trains {run_steps:,} steps: the "
                    f"schedule stops at {run_steps / steps:.0%} of its length (a linear ramp "
                    f"ends at {run_steps / steps:.2f} of its final value)")
        return resolved, warnings

    @classmethod
    def default_argument(cls, name):
        """The default of the constructor argument `name` (the constructor defining it)."""
        for klass in cls.__mro__:
            parameter = inspect.signature(klass.__init__).parameters.get(name)
            if parameter is not None:
                return parameter.default
        raise KeyError(name)

    def selection_metric(self, stage=0):
        """`(logged validation metric, "min" or "max")`: what picks the best epoch of training
        stage `stage`, and so the weights of `model.keras`.

        Never a scheduled loss: an epoch must win by being better, not by coming where a
        schedule makes the loss small. Held-out steps compute the loss at full weights (every
        schedule at its end), so `val_loss` is the default; a density model picks by its
        validation bound, an autoencoder by its reconstruction.
        """
        return "val_loss", "min"

    # --- The probability interface ----------------------------------------------------------

    def posterior(self, x):
        """q(z|x) as a TFP distribution with batch shape `(batch,)`."""
        raise NotImplementedError

    def prior(self):
        """p(z) as a TFP distribution."""
        raise NotImplementedError

    def representation(self, x):
        """A deterministic code of `x` for metrics and pictures: `(batch, latent_dim)`."""
        raise NotImplementedError

    def decode(self, z):
        """The mean of p(x|z): pixel probabilities (Bernoulli) or means (Gaussian)."""
        raise NotImplementedError

    def sample(self, n, seed=None):
        """`n` images from the model; a fixed `seed` (int) draws the same images every time."""
        raise NotImplementedError

    def onto_latent_space(self, z):
        """Codes drawn by an ex-post sampler (`vae_zoo.samplers`), moved onto the space the
        decoder was trained on: the identity, except where codes are constrained (svae's
        sphere)."""
        return z

    def reconstruct(self, x):
        """Deterministic reconstruction: the decoded representation of `x`."""
        return self.decode(self.representation(x))

    def log_importance_weights(self, x, num_samples):
        """`(num_samples, batch)` log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x).

        Their log-mean-exp is the k-sample bound on log p(x) (Burda et al., 2016): k = 1 is the
        ELBO. Only defined when `capabilities.has_density`.
        """
        raise NotImplementedError

    def family_pictures(self):
        """Pictures only this family can draw, beside the ones every model gets (samples,
        reconstructions, traversals): `{name: (images (n, *image_shape) in [0, 1], columns)}`."""
        return {}

    @property
    def continuous_observations(self):
        """True when p(x|z) is a density on pixels (not a probability of binary pixels)."""
        return False

    # --- Serving ----------------------------------------------------------------------------

    # Endpoints without a random op: compared to 1e-5 after export, and quantised to int8.
    deterministic_endpoints = ("serving_default", "reconstruct", "decode")

    def latent_spec(self):
        return tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")

    def serving_endpoints(self):
        """`{name: (function, input_signature)}` for `keras.export.ExportArchive`.

        Every function returns a dict, whose keys name the signature's outputs.
        """
        x_spec = tf.TensorSpec([None, *self.image_shape], tf.float32, name="x")
        n_spec = tf.TensorSpec([], tf.int32, name="n")

        def reconstruct(x):
            return {"reconstruction": self.reconstruct(x)}

        def decode(z):
            return {"x_mean": self.decode(z)}

        def sample(n):
            return {"x_mean": self.sample(n)}

        return {
            "serving_default": (reconstruct, [x_spec]),
            "reconstruct": (reconstruct, [x_spec]),
            "decode": (decode, [self.latent_spec()]),
            "sample": (sample, [n_spec]),
        }

    def tflite_exclusions(self, quantize):
        """`{signature: reason}`: deterministic endpoints left out of the TFLite file of the
        `quantize` mode because they do not hold their tolerance there (random endpoints are
        never in int8 files: random ops cannot be calibrated)."""
        return {}

    def endpoint_examples(self, images):
        """`{endpoint: {input name: array}}`: example inputs of every endpoint built from real
        images, for parity checks and int8 calibration."""
        images = np.asarray(images, dtype="float32")
        return {name: {spec.name: self.example_input(spec.name, images) for spec in specs}
                for name, (_, specs) in self.serving_endpoints().items()}

    def example_input(self, input_name, images):
        """An example value of the endpoint input `input_name`, built from `images`; a model
        whose endpoints take other inputs extends this."""
        if input_name == "x":
            return images
        if input_name == "z":
            return keras.ops.convert_to_numpy(self.representation(images))
        if input_name == "n":
            return np.array(len(images), np.int32)
        raise NotImplementedError(f"no example for the endpoint input {input_name!r}")
