import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.distributions import diagonal_gaussian
from vae_zoo.distributions import kl_to_standard_normal
from vae_zoo.distributions import standard_normal
from vae_zoo.errors import UserInputError
from vae_zoo.layers import LOG_VAR_BOUNDS
from vae_zoo.layers import DiagonalGaussianHead
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.vae import VAE
from vae_zoo.networks import build_encoder

PRIOR_DRAWS = 10000


@register_model
class HVAE(VAE):
    """VAE with two stochastic layers (Burda et al., 2016, the 2-layer model), z2 -> z1 -> x.

    Generative model p(z2) p(z1|z2) p(x|z1) with p(z2) = N(0, I) and p(z1|z2) a diagonal Gaussian
    from an MLP; inference q(z1|x) q(z2|z1), both diagonal Gaussians. Per example, with
    z1 ~ q(z1|x) and z2 ~ q(z2|z1) drawn once by reparameterisation:

        loss = -log p(x|z1) + w(t) * beta * kl
        kl   = [log q(z1|x) - log p(z1|z2)] + KL(q(z2|z1) || N(0, I))

    the first part at the drawn z1, z2 and the second in closed form given z1 (its expectation
    over z2 is exact), so `kl` is an unbiased estimate of KL(q(z1, z2|x) || p(z1, z2)) and
    `elbo = -(reconstruction + kl)` the ELBO. Both parts are tracked (`kl_z1`, `kl_z2`): a `kl_z2`
    near 0 means the top layer collapsed onto its prior.

    `log_importance_weights` draws z1_k ~ q(z1|x), z2_k ~ q(z2|z1_k) and returns
    log p(x|z1_k) + log p(z1_k|z2_k) + log p(z2_k) - log q(z1_k|x) - log q(z2_k|z1_k), so the IW
    NLL scores the hierarchy. The code is z1: `posterior(x)` is q(z1|x), `representation(x)` its
    mean, `decode(z1)` the mean of p(x|z1), and the serving endpoints are the VAE's over z1.
    `sample(n)` is ancestral: z2 ~ N(0, I), z1 ~ p(z1|z2), x = decode(z1), with TFLite builtin
    random ops. The marginal p(z1) has no closed form: `prior()` is the empirical distribution of
    10,000 ancestral draws of z1 (for pictures that need prior quantiles; not a density).

    Args:
        latent_dim: int. Size of z1, the lower layer (the code).
        top_latent_dim: int. Size of z2, the top layer.
        top_hidden_units: list of ints. The MLP of q(z2|z1); p(z1|z2) mirrors it.
        prior_min_log_var: float. Lower clamp of p(z1|z2)'s log-variance. The posterior's clamp
            (-20) lets the learned prior narrow until log p(z1|z2) of a slightly missed z1 is
            -1e11 (seen on 64x64x3 inputs at learning rate 1e-3); -6 (sd 0.05) keeps it finite.
        **kwargs: the arguments of `VAE` (its network is the one between x and z1).
    """

    metric_names = ("reconstruction", "kl", "elbo", "kl_z1", "kl_z2")

    def __init__(self, image_shape, latent_dim=32, top_latent_dim=16,
                 top_hidden_units=(128, 128), prior_min_log_var=-6.0, **kwargs):
        if int(top_latent_dim) < 1:
            raise UserInputError(f"top_latent_dim must be a positive integer, got {top_latent_dim}")
        if not LOG_VAR_BOUNDS[0] <= prior_min_log_var < LOG_VAR_BOUNDS[1]:
            raise UserInputError(f"prior_min_log_var must be in [{LOG_VAR_BOUNDS[0]:g}, "
                                 f"{LOG_VAR_BOUNDS[1]:g}), got {prior_min_log_var}")
        super().__init__(image_shape, latent_dim=latent_dim, **kwargs)

        # === Layers ===
        top_hidden_units = tuple(int(u) for u in top_hidden_units)
        self.top_encoder = self.gaussian_mlp(int(latent_dim), top_hidden_units,
                                             int(top_latent_dim), "top_encoder")
        self.top_decoder = self.gaussian_mlp(int(top_latent_dim), top_hidden_units[::-1],
                                             int(latent_dim), "top_decoder",
                                             min_log_var=prior_min_log_var)

        # === Config ===
        self.top_latent_dim = int(top_latent_dim)
        self.top_hidden_units = list(top_hidden_units)
        self.prior_min_log_var = float(prior_min_log_var)

    def gaussian_mlp(self, input_dim, hidden_units, output_dim, name,
                     min_log_var=LOG_VAR_BOUNDS[0]):
        """A vector -> (mean, clamped log-variance) of a diagonal Gaussian: q(z2|z1), p(z1|z2)."""
        features = build_encoder("dense", (input_dim,), hidden_units=hidden_units,
                                 dtype=self.dtype_policy)
        head = DiagonalGaussianHead(output_dim, min_log_var=min_log_var, dtype="float32",
                                    name=f"{name}_head")
        return keras.Model(features.input, head(features.output), name=name)

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)  # z1 ~ q(z1|x) and p(x|z1)
        top_mean, top_log_var = self.top_encoder(outputs["z"], training=training)
        z_top = self.sampling((top_mean, top_log_var),
                              seed=self.noise_seed(1) if training else None)
        prior_mean, prior_log_var = self.top_decoder(z_top, training=training)
        return {**outputs, "top_mean": top_mean, "top_log_var": top_log_var, "z_top": z_top,
                "prior_mean": prior_mean, "prior_log_var": prior_log_var}

    # --- The objective ----------------------------------------------------------------------

    def loss_terms(self, batch, outputs):
        kl_z1, kl_z2 = self.layer_kls(outputs)
        return {**super().loss_terms(batch, outputs), "kl_z1": kl_z1, "kl_z2": kl_z2}

    def kl_divergence(self, outputs):
        return tf.add_n(self.layer_kls(outputs))

    def layer_kls(self, outputs):
        """`(kl_z1, kl_z2)` per example (the class docstring)."""
        z = outputs["z"]
        kl_z1 = diagonal_gaussian(outputs["z_mean"], outputs["z_log_var"]).log_prob(z) - (
            diagonal_gaussian(outputs["prior_mean"], outputs["prior_log_var"]).log_prob(z))
        return kl_z1, kl_to_standard_normal(outputs["top_mean"], outputs["top_log_var"])

    def log_prior_ratio(self, z, z_mean, z_log_var, training=False):
        """log p(z1|z2) + log p(z2) - log q(z1|x) - log q(z2|z1), z2 ~ q(z2|z1) for each z1."""
        top_mean, top_log_var = self.top_encoder(tf.reshape(z, [-1, self.latent_dim]),
                                                 training=training)
        shape = tf.concat([tf.shape(z)[:-1], [self.top_latent_dim]], 0)
        top_mean, top_log_var = tf.reshape(top_mean, shape), tf.reshape(top_log_var, shape)
        z_top = self.sampling((top_mean, top_log_var),
                              seed=self.noise_seed(1) if training else None)
        prior_mean, prior_log_var = self.top_decoder(
            tf.reshape(z_top, [-1, self.top_latent_dim]), training=training)
        prior_mean = tf.reshape(prior_mean, tf.shape(z))
        prior_log_var = tf.reshape(prior_log_var, tf.shape(z))
        return (diagonal_gaussian(prior_mean, prior_log_var).log_prob(z)
                + standard_normal(self.top_latent_dim).log_prob(z_top)
                - diagonal_gaussian(z_mean, z_log_var).log_prob(z)
                - diagonal_gaussian(top_mean, top_log_var).log_prob(z_top))

    # --- The probability interface ----------------------------------------------------------

    def prior(self):
        return tfp.distributions.Empirical(self.sample_latents(PRIOR_DRAWS, seed=0),
                                           event_ndims=1)

    def sample_latents(self, n, seed=None):
        """Ancestral draws of z1: z2 ~ N(0, I), then z1 ~ p(z1|z2); `(n, latent_dim)`."""
        if seed is None:
            z_top = tf.random.normal([n, self.top_latent_dim])
            eps = tf.random.normal([n, self.latent_dim])
        else:
            z_top = tf.random.stateless_normal([n, self.top_latent_dim], seed=[int(seed), 0])
            eps = tf.random.stateless_normal([n, self.latent_dim], seed=[int(seed), 1])
        mean, log_var = self.top_decoder(z_top, training=False)
        return mean + tf.exp(0.5 * log_var) * eps

    def get_config(self):
        return {**super().get_config(), "top_latent_dim": self.top_latent_dim,
                "top_hidden_units": self.top_hidden_units,
                "prior_min_log_var": self.prior_min_log_var}
