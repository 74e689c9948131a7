"""Held-out numbers of a trained model, all per example and in nats unless named otherwise."""

import math

import keras
import numpy as np

from vae_zoo.evaluation.likelihood import importance_weighted_log_likelihood

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Cov_x(E_q[z_i]) > 0.01


def evaluate_elbo(model, dataset):
    """The ELBO, its two terms and the training loss over a batched dataset, one z per example.

    `elbo` is with beta = 1, whatever beta the model trains with.
    """
    results = model.evaluate(dataset, verbose=0, return_dict=True)
    return {key: float(results[key]) for key in ("elbo", "reconstruction", "kl", "loss")}


def latent_statistics(model, dataset):
    """Posterior means of every example, the reconstruction MSE, and the active-unit count."""
    z_means, squared_errors, count = [], 0.0, 0
    for x in dataset:
        z_mean, _ = model.encode(x)
        reconstruction = model.decode(z_mean)
        squared_errors += float(keras.ops.sum((reconstruction - x) ** 2))
        count += int(np.prod(x.shape))
        z_means.append(keras.ops.convert_to_numpy(z_mean))
    z_means = np.concatenate(z_means)
    variances = z_means.var(axis=0)
    return z_means, {
        "reconstruction_mse": squared_errors / count,
        "active_units": int((variances > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": int(model.latent_dim),
        "latent_mean_variances": [round(float(v), 4) for v in variances],
    }


def importance_weighted_nll(model, dataset, num_samples, max_examples=None, progress=True,
                            num_examples=None):
    """Mean -log p(x) over up to `max_examples` examples, estimated with k = `num_samples`.

    `num_examples` (the dataset's size, if known) only sizes the progress bar.
    """
    values, seen = [], 0
    total = min(filter(None, (max_examples, num_examples)), default=None)
    bar = keras.utils.Progbar(total, unit_name="image") if progress else None
    for x in dataset:
        if max_examples is not None and seen >= max_examples:
            break
        x = x[: max_examples - seen] if max_examples is not None else x
        for start in range(0, int(x.shape[0]), 16):  # 16 examples x k samples per pass
            part = x[start : start + 16]
            values.append(keras.ops.convert_to_numpy(
                importance_weighted_log_likelihood(model, part, num_samples)))
            seen += int(part.shape[0])
            if bar is not None:
                bar.update(seen)
    log_likelihoods = np.concatenate(values)
    return {"iw_nll": float(-log_likelihoods.mean()), "iw_samples": int(num_samples),
            "iw_examples": int(len(log_likelihoods))}


def bits_per_dim(nll, num_dims, likelihood):
    """nats -> bits per dimension. A Gaussian density on pixels scaled to [0, 1] is turned into
    a probability of 8-bit pixels first (+ log 256 per dimension), as is standard."""
    offset = num_dims * math.log(256.0) if likelihood == "gaussian" else 0.0
    return (nll + offset) / (num_dims * math.log(2.0))
