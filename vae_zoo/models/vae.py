import keras
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.layers import Sampling
from vae_zoo.layers import get_likelihood
from vae_zoo.layers import kl_to_standard_normal
from vae_zoo.networks import build_networks


@keras.saving.register_keras_serializable(package="vae_zoo")
class VAE(keras.Model):
    """Variational autoencoder trained on the negative ELBO, in nats per example.

    Per example, `loss = -log p(x|z) + beta * KL(q(z|x) || p(z))` with z ~ q(z|x) drawn once, the
    log-likelihood summed over pixels and the KL over latent dimensions; the batch loss is the mean
    over the *global* batch, so gradients are the same on one device and on N replicas. Variants
    change only `regularizer()`, the weight they put on the KL term.

    Calling the model runs one stochastic forward pass and returns a dict with `z_mean`,
    `z_log_var`, `z` and `x_params` (the decoder's logits or means for that z).

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
        dtype: Keras dtype policy of the hidden layers, e.g. `"mixed_bfloat16"` to compute them
            in bfloat16 (faster on CPUs with AVX512-BF16 or AMX: `benchmarks/throughput.py`).
            The posterior, the sampling, p(x|z) and the loss stay float32
            (`vae_zoo/networks/precision.py`).
    """

    def __init__(
        self,
        image_shape,
        latent_dim=16,
        network="conv",
        filters=(32, 64),
        hidden_units=(256,),
        kernel_size=3,
        likelihood="bernoulli",
        sigma=1.0,
        learn_sigma=False,
        beta=1.0,
        **kwargs,
    ):
        if int(latent_dim) < 1:
            raise UserInputError(f"latent_dim must be a positive integer, got {latent_dim}")
        if beta < 0:
            raise UserInputError(f"beta must be >= 0, got {beta}")
        super().__init__(**kwargs)

        # === Layers ===
        self.encoder, self.decoder = build_networks(
            network,
            image_shape,
            latent_dim,
            filters=tuple(filters),
            hidden_units=tuple(hidden_units),
            kernel_size=kernel_size,
            dtype=self.dtype_policy,
        )
        self.sampling = Sampling(dtype="float32", name="sampling")
        self.likelihood = get_likelihood(likelihood, sigma=sigma, learn_sigma=learn_sigma)

        # === Metrics ===
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")

        # === Config ===
        self.image_shape = tuple(int(d) for d in image_shape)
        self.latent_dim = int(latent_dim)
        self.network = network
        self.filters = list(filters)
        self.hidden_units = list(hidden_units)
        self.kernel_size = kernel_size
        self.likelihood_name = likelihood
        self.sigma = sigma
        self.learn_sigma = learn_sigma
        self.beta = float(beta)
        # Every sublayer is built above, so the model is usable (and exportable) before any call.
        self.built = True

    # --- The model's public API -------------------------------------------------------------

    def call(self, x, training=None):
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling((z_mean, z_log_var))
        x_params = self.decoder(z, training=training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "z": z, "x_params": x_params}

    def encode(self, x):
        """Returns `(z_mean, z_log_var)` of q(z|x)."""
        return self.encoder(x, training=False)

    def decode(self, z):
        """Returns the mean of p(x|z): pixel probabilities (Bernoulli) or means (Gaussian)."""
        return self.likelihood.mean(self.decoder(z, training=False))

    def sample(self, n):
        """Draws `n` images: z from the prior N(0, I), then the mean of p(x|z)."""
        return self.decode(tf.random.normal([n, self.latent_dim]))

    def reconstruct(self, x):
        """Deterministic reconstruction: the mean of p(x|z) at z = E[q(z|x)]."""
        z_mean, _ = self.encode(x)
        return self.decode(z_mean)

    # --- The objective ----------------------------------------------------------------------

    def elbo_terms(self, x, outputs):
        """Per-example `(reconstruction, kl)` in nats: -log p(x|z) and KL(q(z|x) || p(z))."""
        reconstruction = -self.likelihood.log_prob(x, outputs["x_params"])
        kl = kl_to_standard_normal(outputs["z_mean"], outputs["z_log_var"])
        return reconstruction, kl

    def regularizer(self, kl):
        """The KL penalty in the per-example loss; variants override this alone."""
        return self.beta * kl

    def schedule_values(self):
        """Scalars of the objective worth logging each epoch (beta, capacity, ...)."""
        return {"beta": self.beta}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x = tf.cast(x, y_pred["x_params"].dtype)
        reconstruction, kl = self.elbo_terms(x, y_pred)
        per_example = reconstruction + self.regularizer(kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        self.elbo_tracker.update_state(-(reconstruction + kl))
        # Divides by the global batch (local batch * replicas): the strategy SUMs gradients.
        loss = tf.nn.compute_average_loss(per_example)
        if self.losses:
            loss += tf.nn.scale_regularization_loss(tf.add_n(self.losses))
        return loss

    @property
    def metrics(self):
        return [*super().metrics, self.reconstruction_tracker, self.kl_tracker, self.elbo_tracker]

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
            "network": self.network,
            "filters": self.filters,
            "hidden_units": self.hidden_units,
            "kernel_size": self.kernel_size,
            "likelihood": self.likelihood_name,
            "sigma": self.sigma,
            "learn_sigma": self.learn_sigma,
            "beta": self.beta,
        }
