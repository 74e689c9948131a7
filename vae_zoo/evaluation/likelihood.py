"""Importance-weighted estimate of log p(x) (Burda et al., 2016, eq. 8)."""

import math

import tensorflow as tf

from vae_zoo.layers import posterior
from vae_zoo.layers import prior


def importance_weighted_log_likelihood(model, x, num_samples, chunk_size=None):
    """Per-example log p(x) ~ logmeanexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)], in nats.

    The k samples are drawn in chunks and folded into a running logsumexp, so memory holds
    `chunk_size` decoded batches at a time whatever k is. A lower bound on log p(x) in expectation
    that tightens as k grows; k = 1 is the ELBO.

    Args:
        model: a zoo VAE.
        x: a batch of inputs, shape `(batch, *image_shape)`.
        num_samples: int. k, the number of importance samples per example.
        chunk_size: int. Samples decoded per step; defaults to about 4096 images per step.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    batch = int(x.shape[0])
    chunk_size = chunk_size or max(1, min(num_samples, 4096 // max(batch, 1)))
    z_mean, z_log_var = model.encode(x)
    log_sum = tf.fill([batch], -math.inf)
    done = 0
    while done < num_samples:
        size = min(chunk_size, num_samples - done)
        log_sum = tf.reduce_logsumexp(
            tf.stack([log_sum, _log_weight_sum(model, x, z_mean, z_log_var, size)]), axis=0
        )
        done += size
    return log_sum - math.log(num_samples)


@tf.function(reduce_retracing=True)
def _log_weight_sum(model, x, z_mean, z_log_var, size):
    """logsumexp over `size` draws of the log importance weights, per example."""
    q = posterior(z_mean, z_log_var)
    z = q.sample(size)  # (size, batch, latent)
    log_q = q.log_prob(z)
    log_pz = prior(z.shape[-1]).log_prob(z)
    batch = tf.shape(x)[0]
    flat_z = tf.reshape(z, [-1, z.shape[-1]])
    x_tiled = tf.reshape(
        tf.tile(x[None], [size] + [1] * len(x.shape)), tf.concat([[-1], tf.shape(x)[1:]], 0)
    )
    log_px = model.likelihood.log_prob(x_tiled, model.decoder(flat_z, training=False))
    log_px = tf.reshape(log_px, [size, batch])
    return tf.reduce_logsumexp(log_px + log_pz - log_q, axis=0)
