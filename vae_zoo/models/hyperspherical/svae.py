import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.distributions import standard_normal_draws
from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.hyperspherical.von_mises_fisher import VonMisesFisherHead
from vae_zoo.models.hyperspherical.von_mises_fisher import von_mises_fisher_draws
from vae_zoo.models.vae import VAE

tfd = tfp.distributions


@register_model
class SVAE(VAE):
    """Hyperspherical VAE, S-VAE (Davidson et al., 2018): codes on the unit sphere.

    q(z|x) is a von Mises-Fisher distribution vMF(mu(x), kappa(x)) on S^(d-1) in R^d (d =
    `latent_dim`) and p(z) is uniform on that sphere, so the prior has no centre that pulls
    every code towards it; the paper finds it better than a Gaussian VAE at small d (below about
    20) on MNIST. The loss is the VAE's, `-log p(x|z) + w(t) * beta * KL(vMF || uniform)`, with
    the KL in closed form from TFP and z drawn by the reparameterised rejection sampler of
    `von_mises_fisher.py`. The IW NLL applies: `log_importance_weights` scores draws z_k ~ q by
    log p(x|z_k) + log p(z_k) - log q(z_k|x) with TFP's vMF and spherical-uniform densities.

    Calling the model returns `z_mean` (the mean direction mu), `kappa`, `z` and `x_params`.
    The `encode` endpoint returns mu and kappa (deterministic); `sample` decodes uniform draws
    on the sphere (normalised Gaussians, which TFLite's RANDOM_STANDARD_NORMAL serves).

    Args: those of `VAE`; `latent_dim` >= 2 is the dimension of the space the sphere lies in.
    """

    def __init__(self, image_shape, latent_dim=10, **kwargs):
        if int(latent_dim) < 2:
            raise UserInputError(f"svae needs latent_dim >= 2 (the sphere S^(d-1) in R^d), "
                                 f"got {latent_dim}")
        super().__init__(image_shape, latent_dim=latent_dim, **kwargs)

    def posterior_head(self, features, latent_dim):
        return VonMisesFisherHead(latent_dim, dtype="float32", name="posterior")(features)

    def call(self, inputs, training=None):
        x = self.as_batch(inputs)["x"]
        mean, kappa = self.encoder(x, training=training)
        z = von_mises_fisher_draws(mean, kappa, seed=self.noise_seed() if training else None)
        x_params = self.decoder(z, training=training)
        return {"z_mean": mean, "kappa": kappa, "z": z, "x_params": x_params}

    def kl_divergence(self, outputs):
        return tfd.kl_divergence(tfd.VonMisesFisher(outputs["z_mean"], outputs["kappa"]),
                                 self.prior())

    # --- The probability interface ----------------------------------------------------------

    def posterior(self, x):
        return tfd.VonMisesFisher(*self.encoder(x, training=False))

    def prior(self):
        return tfd.SphericalUniform(dimension=self.latent_dim)

    def sample_latents(self, n, seed=None):
        return tf.math.l2_normalize(standard_normal_draws(n, self.latent_dim, seed), axis=-1)

    def onto_latent_space(self, z):
        return tf.math.l2_normalize(z, axis=-1)  # a fitted sampler's draws leave the sphere

    def log_importance_weights(self, x, num_samples):
        x = tf.convert_to_tensor(x, tf.float32)
        mean, kappa = self.encoder(x, training=False)
        k, batch = num_samples, tf.shape(x)[0]
        z = von_mises_fisher_draws(tf.tile(mean, [k, 1]), tf.tile(kappa, [k]))
        z = tf.reshape(z, [k, batch, self.latent_dim])
        log_ratio = self.prior().log_prob(z) - tfd.VonMisesFisher(mean, kappa).log_prob(z)
        return self.draws_log_likelihood(x, z) + log_ratio

    # --- Serving ----------------------------------------------------------------------------

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()
        x_signature = endpoints["reconstruct"][1]

        def encode(x):
            mean, kappa = self.encoder(x, training=False)
            return {"z_mean": mean, "kappa": kappa}

        return {**endpoints, "encode": (encode, x_signature)}
