"""The Gaussian distributions of the VAE family, as TFP distributions built from tensors.

`tfp.layers` are Keras 2 layers and cannot live in a Keras 3 model, so distributions are built
inside the model's methods and only tensors cross layer boundaries. Both sides of the KL are
`MultivariateNormalDiag`: TFP registers no KL between `Independent(Normal)` and it.
"""

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def diagonal_gaussian(mean, log_var):
    """N(mean, diag(exp(log_var))), batched over the leading dimensions of `mean`."""
    return tfd.MultivariateNormalDiag(loc=mean, scale_diag=tf.exp(0.5 * log_var))


def gaussian_mixture(means, log_vars):
    """The equal-weight mixture of N(means[k], diag(exp(log_vars[k]))) over the first axis."""
    components = tf.shape(means)[0]
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=tf.zeros([components], dtype=means.dtype)),
        components_distribution=diagonal_gaussian(means, log_vars),
    )


def standard_normal(latent_dim, dtype=tf.float32):
    """N(0, I) over `latent_dim` dimensions."""
    return tfd.MultivariateNormalDiag(
        loc=tf.zeros([latent_dim], dtype=dtype), scale_diag=tf.ones([latent_dim], dtype=dtype)
    )


def standard_normal_draws(n, latent_dim, seed=None):
    """`n` draws z ~ N(0, I), `(n, latent_dim)`: random, or the same for the same int `seed`.

    `tf.random.normal` lowers to TFLite's RANDOM_STANDARD_NORMAL builtin, so the `sample`
    endpoint converts; a fixed seed takes the stateless op, for pictures that compare like with
    like across epochs.
    """
    if seed is None:
        return tf.random.normal([n, latent_dim])
    return tf.random.stateless_normal([n, latent_dim], seed=[int(seed), 0])


def kl_to_standard_normal(mean, log_var):
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) in nats, summed over dimensions: `(batch,)`."""
    return tfd.kl_divergence(diagonal_gaussian(mean, log_var),
                             standard_normal(mean.shape[-1], mean.dtype))
