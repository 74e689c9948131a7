"""The model's own objective on held-out data: every term it tracks, one z per example."""

import numpy as np

from vae_zoo.evaluation import register_metric
from vae_zoo.evaluation.iw_nll import bits_per_dim


@register_metric("objective")
def evaluate_objective(model, batches, settings=None):
    """The loss and each of `model.metric_names` (for a VAE: elbo, reconstruction, kl).

    `elbo` is with beta = 1 whatever beta the model trains with; with a density it is also given
    in bits per dimension.
    """
    results = {k: float(v) for k, v in model.evaluate(batches, verbose=0, return_dict=True).items()}
    if "elbo" in results and model.capabilities.has_density:
        results["elbo_bits_per_dim"] = bits_per_dim(
            -results["elbo"], int(np.prod(model.image_shape)), model.continuous_observations)
    return results
