import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.distributions import diagonal_gaussian
from vae_zoo.distributions import standard_normal
from vae_zoo.distributions import standard_normal_draws
from vae_zoo.errors import UserInputError
from vae_zoo.layers import DiagonalGaussianHead
from vae_zoo.layers import Sampling
from vae_zoo.layers import get_likelihood
from vae_zoo.models.base import ZooModel
from vae_zoo.models.base import register_model
from vae_zoo.models.image_networks import ImageNetworks
from vae_zoo.models.vae.schedules import KLSchedule
from vae_zoo.networks import build_decoder
from vae_zoo.networks import build_encoder


@register_model
class VAE(ImageNetworks, ZooModel):
    """Variational autoencoder (Kingma & Welling, 2014) trained on the negative ELBO, in nats.

    Per example, `loss = -log p(x|z) + w(t) * beta * KL(q(z|x) || p(z))` with z ~ q(z|x) drawn
    once, the log-likelihood summed over pixels and the KL over latent dimensions; the batch loss is
    the mean over the global batch. q(z|x) is a diagonal Gaussian, p(z) = N(0, I). w(t) is the KL
    schedule after t training steps (`KLSchedule`: 1, a linear warm-up, or Fu et al.'s cyclical
    annealing). Variants that only reweight the KL override `regularizer()`; a prior without a
    closed-form KL overrides `kl_divergence()`.

    Calling the model runs one stochastic forward pass and returns a dict with `z_mean`,
    `z_log_var`, `z` and `x_params` (the decoder's logits or means for that z).

    Serving endpoints: `reconstruct`/`serving_default` (x -> reconstruction), `encode`
    (x -> z_mean, z_log_var and one draw z), `decode` (z -> x_mean), `sample` (n -> x_mean).

    Args:
        image_shape: tuple of ints. Shape of one input, e.g. `(28, 28, 1)`.
        latent_dim: int. Size of z.
        network: str. Encoder/decoder family: `"dense"` or `"conv"`.
        filters: list of ints. Channels of the stride-2 conv layers (conv network only).
        hidden_units: list of ints. Dense layers between the image features and the latent head.
        kernel_size: int. Conv kernel size (conv network only).
        likelihood: str. p(x|z): `"bernoulli"` (logits) or `"gaussian"` (N(f(z), sigma^2 I)).
        sigma: float. Gaussian likelihood scale (or its initial value when `learn_sigma`).
        learn_sigma: bool. Learn the Gaussian scale.
        beta: float. Weight on the KL term (1.0 is the ELBO).
        kl_schedule: str. The KL weight w(t) multiplying the penalty: `"constant"` (w = 1),
            `"linear"` (warm-up from 0 to 1 over `kl_schedule_steps`) or `"cyclical"`
            (`kl_cycles` cycles over `kl_schedule_steps`, each rising over `kl_ratio` of it).
        kl_schedule_steps: int or float. Steps of the warm-up, or of all the cycles together;
            a float <= 1 is a fraction of the run's training steps, which `train.py` turns
            into steps when the run starts (`ZooModel.resolve_schedule_lengths`). The default,
            the first half of the run, leaves the second half at w = 1, so the model the run
            reports trains on the ELBO (10,000 steps, the old default, ended a 1,140-step run
            at w = 0.11: a beta = 0.11 model reported as a VAE).
        kl_cycles: int. Number of cycles of the cyclical schedule.
        kl_ratio: float. Fraction of each cycle spent rising, in (0, 1].
        dtype: Keras dtype policy of the hidden layers, e.g. `"mixed_bfloat16"` to compute them
            in bfloat16 (faster on CPUs with AVX512-BF16 or AMX: `benchmarks/throughput.py`).
            The posterior, the sampling, p(x|z) and the loss stay float32
            (`vae_zoo/networks/precision.py`).

    Network arguments left at None take the network's defaults; one the network does not take
    (`filters` for the dense network) is an error.
    """

    metric_names = ("reconstruction", "kl", "elbo")
    schedule_lengths = {"kl_schedule_steps": 0}
    objective_is_elbo = True  # False for variants that change the objective on purpose

    def __init__(
        self,
        image_shape,
        latent_dim=16,
        network="conv",
        filters=None,
        hidden_units=None,
        kernel_size=None,
        likelihood="bernoulli",
        sigma=1.0,
        learn_sigma=False,
        beta=1.0,
        kl_schedule="constant",
        kl_schedule_steps=0.5,
        kl_cycles=4,
        kl_ratio=0.5,
        **kwargs,
    ):
        if int(latent_dim) < 1:
            raise UserInputError(f"latent_dim must be a positive integer, got {latent_dim}")
        if beta < 0:
            raise UserInputError(f"beta must be >= 0, got {beta}")
        super().__init__(image_shape, **kwargs)

        # === Config === (the networks' first: the layers are built from it)
        self.keep_network_config(latent_dim, network, filters, hidden_units, kernel_size,
                                 likelihood, sigma, learn_sigma)

        # === Layers ===
        self.encoder, self.decoder = self.build_networks(network, image_shape, self.latent_dim,
                                                         self.network_args())
        self.sampling = Sampling(dtype="float32", name="sampling")
        self.likelihood = get_likelihood(likelihood, sigma=sigma, learn_sigma=learn_sigma)

        # === Config ===
        self.beta = float(beta)
        self.kl_schedule = KLSchedule(kl_schedule, kl_schedule_steps, kl_cycles, kl_ratio)
        self._held_out = False
        # Every sublayer is built above, so the model is usable (and exportable) before any call.
        self.built = True

    def build_networks(self, network, image_shape, latent_dim, network_args):
        """`(encoder, decoder)`: x -> the posterior's parameters (`posterior_head`) and z ->
        parameters of p(x|z).

        A family whose networks take more inputs (a label) overrides this alone.
        """
        features = build_encoder(network, image_shape, dtype=self.dtype_policy, **network_args)
        encoder = keras.Model(features.input, self.posterior_head(features.output, latent_dim),
                              name="encoder")
        decoder = build_decoder(network, image_shape, latent_dim, dtype=self.dtype_policy,
                                **network_args)
        return encoder, decoder

    def posterior_head(self, features, latent_dim):
        """The encoder's outputs from its features: `(z_mean, z_log_var)` of the diagonal
        Gaussian q(z|x). A family with another posterior (flows, the sphere) overrides this
        alone."""
        return DiagonalGaussianHead(latent_dim, dtype="float32", name="posterior")(features)

    def call(self, inputs, training=None):
        x = self.as_batch(inputs)["x"]
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling((z_mean, z_log_var), seed=self.noise_seed() if training else None)
        x_params = self.decoder(z, training=training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "z": z, "x_params": x_params}

    # --- The objective ----------------------------------------------------------------------

    def loss_terms(self, batch, outputs):
        x = tf.cast(batch["x"], outputs["x_params"].dtype)
        reconstruction = -self.likelihood.log_prob(x, outputs["x_params"])
        kl = self.kl_divergence(outputs)
        return {
            "loss": reconstruction + self.kl_weight() * self.regularizer(kl),
            "reconstruction": reconstruction,
            "kl": kl,
            "elbo": -(reconstruction + kl),
        }

    def kl_divergence(self, outputs):
        """KL(q(z|x) || p(z)) per example, in closed form (a prior without one overrides this)."""
        return tfp.distributions.kl_divergence(
            diagonal_gaussian(outputs["z_mean"], outputs["z_log_var"]), self.prior())

    def regularizer(self, kl):
        """The KL penalty in the per-example loss; reweighting variants override this alone."""
        return self.beta * kl

    def kl_weight(self):
        """The schedule's w(t) in [0, 1] after the steps trained so far; it scales the penalty.

        Held-out losses (`test_step`: validation, test) use w = 1, the objective the schedule ends
        at, so that `val_loss` compares epochs on one objective (a cyclical schedule would
        otherwise favour the epochs that end where w is near 0) and can pick the best epoch.
        """
        if self._held_out:
            return tf.constant(1.0)
        return self.kl_schedule(self.steps_trained)

    def test_step(self, data):
        self._held_out = True  # read when the step is traced (or run eagerly)
        try:
            return super().test_step(data)
        finally:
            self._held_out = False

    @classmethod
    def schedules_in_use(cls, args):
        scheduled = args.get("kl_schedule", "constant") != "constant"
        return {"kl_schedule_steps"} if scheduled else set()

    def selection_metric(self, stage=0):
        """The validation ELBO when the objective at full weights is the negative ELBO (beta =
        1, `objective_is_elbo`); otherwise that objective, `val_loss`."""
        if self.objective_is_elbo and self.beta == 1.0:
            return "val_elbo", "max"
        return "val_loss", "min"

    def schedule_values(self):
        values = {"beta": self.beta}
        if self.kl_schedule.kind != "constant":
            values["kl_weight"] = float(self.kl_weight())
        return values

    # --- The probability interface ----------------------------------------------------------

    def posterior(self, x):
        return diagonal_gaussian(*self.encoder(x, training=False))

    def prior(self):
        return standard_normal(self.latent_dim)

    def representation(self, x):
        z_mean, _ = self.encoder(x, training=False)
        return z_mean

    def decode(self, z):
        return self.likelihood.mean(self.decoder(z, training=False))

    def sample(self, n, seed=None):
        return self.decode(self.sample_latents(n, seed))

    def sample_latents(self, n, seed=None):
        """`n` draws z ~ p(z), `(n, latent_dim)`; a prior other than N(0, I) overrides this."""
        return standard_normal_draws(n, self.latent_dim, seed)

    def log_importance_weights(self, x, num_samples):
        x = tf.convert_to_tensor(x, tf.float32)
        z_mean, z_log_var = self.encoder(x, training=False)
        log_px, log_ratio = self.importance_terms(x, z_mean, z_log_var, num_samples)
        return log_px + log_ratio

    def importance_terms(self, x, z_mean, z_log_var, num_samples, training=False):
        """The two parts of the log importance weights, for k draws z_k ~ q(z|x).

        The draws are reparameterised (the `Sampling` layer), so k-sample objectives train
        through them. Returns `(log p(x|z_k), log p(z_k) - log q(z_k|x))`, each `(k, batch)`.
        """
        k = num_samples
        z = self.sampling((tf.repeat(z_mean[None], k, axis=0),
                           tf.repeat(z_log_var[None], k, axis=0)),
                          seed=self.noise_seed() if training else None)  # (k, batch, latent)
        log_ratio = self.log_prior_ratio(z, z_mean, z_log_var, training)
        return self.draws_log_likelihood(x, z, training), log_ratio

    def draws_log_likelihood(self, x, z, training=False):
        """log p(x|z_k) at draws z `(k, batch, latent)` of each example of x: `(k, batch)`."""
        x = tf.cast(x, tf.float32)
        k, batch = tf.shape(z)[0], tf.shape(x)[0]
        x_tiled = tf.reshape(
            tf.tile(x[None], [k] + [1] * len(x.shape)), tf.concat([[-1], tf.shape(x)[1:]], 0))
        x_params = self.decoder(tf.reshape(z, [-1, self.latent_dim]), training=training)
        log_px = self.likelihood.log_prob(x_tiled, x_params)
        return tf.reshape(log_px, [k, batch])

    def log_prior_ratio(self, z, z_mean, z_log_var, training=False):
        """log p(z) - log q(z|x) at draws z `(k, batch, latent)`; a model with more latent
        variables than z (a hierarchy) draws and scores them here."""
        return self.prior().log_prob(z) - diagonal_gaussian(z_mean, z_log_var).log_prob(z)

    # --- Serving ----------------------------------------------------------------------------

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()
        x_signature = endpoints["reconstruct"][1]

        def encode(x):
            z_mean, z_log_var = self.encoder(x, training=False)
            return {"z_mean": z_mean, "z_log_var": z_log_var,
                    "z": self.sampling((z_mean, z_log_var))}

        return {**endpoints, "encode": (encode, x_signature)}

    def get_config(self):
        return {
            **super().get_config(),
            **self.network_config(),
            "beta": self.beta,
            "kl_schedule": self.kl_schedule.kind,
            "kl_schedule_steps": self.kl_schedule.steps,
            "kl_cycles": self.kl_schedule.cycles,
            "kl_ratio": self.kl_schedule.ratio,
        }
