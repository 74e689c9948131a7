"""Posterior, prior and KL as TFP distributions built from tensors.

`tfp.layers` are Keras 2 layers and cannot live in a Keras 3 model, so the distributions are built
inside the model's methods and only tensors cross layer boundaries. Both sides of the KL are
`MultivariateNormalDiag`: TFP registers no KL between `Independent(Normal)` and it.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def posterior(z_mean, z_log_var):
    """q(z|x) = N(z_mean, diag(exp(z_log_var)))."""
    return tfd.MultivariateNormalDiag(loc=z_mean, scale_diag=tf.exp(0.5 * z_log_var))


def prior(latent_dim, dtype=tf.float32):
    """p(z) = N(0, I)."""
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros([latent_dim], dtype=dtype), scale_diag=tf.ones([latent_dim], dtype=dtype)
    )


def kl_to_standard_normal(z_mean, z_log_var):
    """KL(q(z|x) || p(z)) in nats, summed over latent dimensions: shape `(batch,)`."""
    latent_dim = z_mean.shape[-1]
    return tfd.kl_divergence(posterior(z_mean, z_log_var), prior(latent_dim, z_mean.dtype))
