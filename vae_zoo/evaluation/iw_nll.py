"""Importance-weighted estimate of -log p(x) (Burda et al., 2016, eq. 8), from the model's own
log importance weights, and its conversion to bits per dimension."""

import math

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import register_metric
from vae_zoo.networks.precision import in_precision

DECODES_PER_CALL = 256  # images decoded by one call of the decoder (images x samples): a conv
# decoder holds ~0.2-0.6 MB of activations per image in a call; 4,096 took the default run's
# evaluation to 2.3 GB peak RSS, 256 to 1.1 GB, at the same CPU time per image (calls of 256 to
# 16,384 decodes cost the same per FLOP, benchmarks/time_to_result.py)
IMAGES_PER_PASS = 64  # images estimated by one call of the compiled estimator


def importance_weighted_log_likelihood(model, x, num_samples, chunk_size=None):
    """Per-example log p(x) ~ logmeanexp_k log w_k, in nats, w_k from `model.log_importance_weights`.

    One compiled call estimates the whole batch: the k samples are drawn in chunks inside a
    `tf.while_loop` and folded into a running logsumexp, so memory holds one chunk's decoded
    images (`batch * chunk_size`) whatever k is, and the host waits once per batch, not per chunk.
    A lower bound on log p(x) in expectation that tightens as k grows; k = 1 is the ELBO.

    Args:
        model: a zoo model with a density.
        x: a batch of inputs, shape `(batch, *image_shape)`.
        num_samples: int. k, the number of importance samples per example.
        chunk_size: int. Samples per example decoded together; default: about
            `DECODES_PER_CALL` images per decoder call.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    batch = max(int(x.shape[0]), 1)
    chunk_size = chunk_size or max(1, DECODES_PER_CALL // batch)
    chunk_size = min(chunk_size, num_samples)
    return _log_mean_weight(model, x, int(num_samples), int(chunk_size))


@tf.function(reduce_retracing=True)
def _log_mean_weight(model, x, num_samples, chunk_size):
    """logmeanexp over `num_samples` draws of the log importance weights, per example."""
    chunks, rest = divmod(num_samples, chunk_size)

    def fold(log_sum, size):
        chunk = tf.reduce_logsumexp(model.log_importance_weights(x, size), axis=0)
        return tf.reduce_logsumexp(tf.stack([log_sum, chunk]), axis=0)

    log_sum = tf.fill(tf.shape(x)[:1], -math.inf)
    _, log_sum = tf.while_loop(lambda i, _: i < chunks,
                               lambda i, log_sum: (i + 1, fold(log_sum, chunk_size)),
                               (tf.constant(0), log_sum))
    if rest:
        log_sum = fold(log_sum, rest)
    return log_sum - math.log(num_samples)


@register_metric("iw_nll", requires=("has_density",))
def importance_weighted_nll(model, batches, settings):
    """Mean -log p(x) over up to `settings.iw_examples` test images, k = `settings.iw_samples`.

    Images go to the estimator `IMAGES_PER_PASS` at a time (whatever the batches' size); the
    progress bar shows images/s and the time left. The estimate computes in
    `settings.iw_precision` whatever precision the model trained in, so that a model trained in
    mixed bfloat16 is scored, by default, in float32 as its exports compute.
    """
    values, seen = [], 0
    limit, k = settings.iw_examples, settings.iw_samples
    total = min(filter(None, (limit, settings.num_examples)), default=None)
    bar = keras.utils.Progbar(total, unit_name="image") if settings.progress else None
    images = batches.unbatch().map(lambda e: e["x"])
    if limit is not None:
        images = images.take(limit)
    estimator = in_precision(model, settings.iw_precision)
    for x in images.batch(IMAGES_PER_PASS):
        values.append(importance_weighted_log_likelihood(estimator, x, k).numpy())
        seen += int(x.shape[0])
        if bar is not None:
            bar.update(seen)
    nll = float(-np.concatenate(values).mean())
    return {"iw_nll": nll, "iw_samples": int(k), "iw_examples": int(seen),
            "iw_bits_per_dim": bits_per_dim(nll, int(np.prod(model.image_shape)),
                                            model.continuous_observations),
            **({"iw_precision": settings.iw_precision}
               if settings.iw_precision != "float32" else {})}


def bits_per_dim(nll, num_dims, continuous):
    """nats -> bits per dimension. A density on pixels scaled to [0, 1] (`continuous`) is turned
    into a probability of 8-bit pixels first (+ log 256 per dimension), as is standard."""
    offset = num_dims * math.log(256.0) if continuous else 0.0
    return (nll + offset) / (num_dims * math.log(2.0))
