"""Importance-weighted estimate of -log p(x) (Burda et al., 2016, eq. 8), from the model's own
log importance weights, and its conversion to bits per dimension."""

import math

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import register_metric

IMAGES_PER_PASS = 16  # images whose k samples are decoded together


def importance_weighted_log_likelihood(model, x, num_samples, chunk_size=None):
    """Per-example log p(x) ~ logmeanexp_k log w_k, in nats, w_k from `model.log_importance_weights`.

    The k samples are drawn in chunks and folded into a running logsumexp, so memory holds
    `chunk_size` decoded batches at a time whatever k is. A lower bound on log p(x) in expectation
    that tightens as k grows; k = 1 is the ELBO.

    Args:
        model: a zoo model with a density.
        x: a batch of inputs, shape `(batch, *image_shape)`.
        num_samples: int. k, the number of importance samples per example.
        chunk_size: int. Samples decoded per step; defaults to about 4096 images per step.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    batch = int(x.shape[0])
    chunk_size = chunk_size or max(1, min(num_samples, 4096 // max(batch, 1)))
    log_sum = tf.fill([batch], -math.inf)
    done = 0
    while done < num_samples:
        size = min(chunk_size, num_samples - done)
        log_sum = tf.reduce_logsumexp(tf.stack([log_sum, _log_weight_sum(model, x, size)]), axis=0)
        done += size
    return log_sum - math.log(num_samples)


@tf.function(reduce_retracing=True)
def _log_weight_sum(model, x, size):
    """logsumexp over `size` draws of the log importance weights, per example."""
    return tf.reduce_logsumexp(model.log_importance_weights(x, size), axis=0)


@register_metric("iw_nll", requires=("has_density",))
def importance_weighted_nll(model, batches, settings):
    """Mean -log p(x) over up to `settings.iw_examples` test images, k = `settings.iw_samples`."""
    values, seen = [], 0
    limit, k = settings.iw_examples, settings.iw_samples
    total = min(filter(None, (limit, settings.num_examples)), default=None)
    bar = keras.utils.Progbar(total, unit_name="image") if settings.progress else None
    for batch in batches:
        x = batch["x"]
        if limit is not None and seen >= limit:
            break
        x = x[: limit - seen] if limit is not None else x
        for start in range(0, int(x.shape[0]), IMAGES_PER_PASS):
            part = x[start : start + IMAGES_PER_PASS]
            values.append(keras.ops.convert_to_numpy(
                importance_weighted_log_likelihood(model, part, k)))
            seen += int(part.shape[0])
            if bar is not None:
                bar.update(seen)
    nll = float(-np.concatenate(values).mean())
    return {"iw_nll": nll, "iw_samples": int(k), "iw_examples": int(seen),
            "iw_bits_per_dim": bits_per_dim(nll, int(np.prod(model.image_shape)),
                                            model.continuous_observations)}


def bits_per_dim(nll, num_dims, continuous):
    """nats -> bits per dimension. A density on pixels scaled to [0, 1] (`continuous`) is turned
    into a probability of 8-bit pixels first (+ log 256 per dimension), as is standard."""
    offset = num_dims * math.log(256.0) if continuous else 0.0
    return (nll + offset) / (num_dims * math.log(2.0))
