"""Disentanglement metrics: how well a representation separates the ground-truth factors.

The five of disentanglement_lib (Locatello et al. 2019), with its default parameters and its
interface, so an encoder from outside the zoo is scored the same way:

    from vae_zoo.evaluation.disentanglement import compute_mig
    from vae_zoo.data.sources.dsprites import DSprites

    scores = compute_mig(DSprites(), lambda images: my_encoder(images).mean, random_state=0)

Each metric is a function `(ground_truth, representation_function, random_state, **parameters)
-> dict`: `ground_truth` a `vae_zoo.data.GroundTruthFactors`, `representation_function` maps a
numpy batch of images to `(n, num_codes)` codes (for a VAE, the posterior mean, as
disentanglement_lib scores it), `random_state` a `np.random.Generator` or an int seed. Unlike
the zoo's held-out metrics, these draw their own images from the ground truth.
"""

from vae_zoo.evaluation.disentanglement.beta_vae import compute_beta_vae
from vae_zoo.evaluation.disentanglement.dci import compute_dci
from vae_zoo.evaluation.disentanglement.factor_vae import compute_factor_vae
from vae_zoo.evaluation.disentanglement.mig import compute_mig
from vae_zoo.evaluation.disentanglement.sap import compute_sap

# name -> (function, its size parameters, the key of its headline score)
METRICS = {
    "beta_vae": (compute_beta_vae, ("num_train", "num_eval"), "eval_accuracy"),
    "factor_vae": (compute_factor_vae, ("num_train", "num_eval", "num_variance_estimate"),
                   "eval_accuracy"),
    "mig": (compute_mig, ("num_train",), "discrete_mig"),
    "dci": (compute_dci, ("num_train", "num_test"), None),
    "sap": (compute_sap, ("num_train", "num_test"), "SAP_score"),
}


def compute_all(ground_truth, representation_function, random_state=0, num_points=None):
    """All five metrics, each from its own seed derived from `random_state`.

    Args:
        ground_truth: a `GroundTruthFactors`.
        representation_function: images -> `(n, num_codes)` numpy codes.
        random_state: int seed.
        num_points: int or None. Caps every metric's sample sizes (`num_train`, `num_eval`,
            `num_test`, `num_variance_estimate`) for a quick, rougher estimate; None keeps
            disentanglement_lib's defaults.

    Returns:
        dict: metric name -> its dict of results.
    """
    import inspect

    import numpy as np

    seeds = np.random.SeedSequence(random_state).spawn(len(METRICS))
    results = {}
    for (name, (compute, sizes, _)), seed in zip(METRICS.items(), seeds):
        parameters = inspect.signature(compute).parameters
        kwargs = {} if num_points is None else {
            size: min(num_points, parameters[size].default) for size in sizes}
        results[name] = compute(ground_truth, representation_function,
                                np.random.default_rng(seed), **kwargs)
    return results


def headline_scores(results):
    """`{name: float}`: the one number of each metric (DCI gives three) for TensorBoard."""
    scores = {}
    for name, (_, _, key) in METRICS.items():
        if name not in results:
            continue
        if name == "dci":
            for part in ("disentanglement", "completeness", "informativeness_test"):
                scores[f"dci_{part.split('_')[0]}"] = results[name][part]
        else:
            scores[name] = results[name][key]
    return scores
