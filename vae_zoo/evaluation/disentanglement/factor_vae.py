"""The FactorVAE score (Kim & Mnih 2018): with one factor held fixed over a batch, the code
dimension whose variance (relative to its global variance) drops most votes for that factor; a
majority-vote classifier from dimensions to factors is scored."""

import numpy as np

from vae_zoo.evaluation.disentanglement import utils


def compute_factor_vae(ground_truth, representation_function, random_state, batch_size=64,
                       num_train=10000, num_eval=5000, num_variance_estimate=10000,
                       prune_threshold=0.05):
    """The FactorVAE score with disentanglement_lib's defaults (those of its study's configs).

    Global variances (ddof 1) come from `num_variance_estimate` random images; dimensions whose
    standard deviation is below `prune_threshold` are collapsed and never vote. Each point holds
    a random factor fixed over `batch_size` images and votes for the active dimension of least
    variance / global variance; each dimension is assigned the factor it votes for most often
    (on `num_train` points) and the score is the share of `num_eval` new votes that assignment
    gets right. A code with no active dimension scores 0.

    Args:
        ground_truth: a `GroundTruthFactors`.
        representation_function: images -> `(n, num_codes)` numpy codes.
        random_state: `np.random.Generator` or int seed.
        batch_size: int. Images per point.
        num_train: int. Points that train the majority vote.
        num_eval: int. Points it is scored on.
        num_variance_estimate: int. Images for the global variances.
        prune_threshold: float. Minimum standard deviation of an active dimension.

    Returns:
        dict: `train_accuracy`, `eval_accuracy`, `num_active_dims` (the dimensions that vote;
        disentanglement_lib reports the code size there).
    """
    random_state = utils.as_generator(random_state)
    codes, _ = utils.sample_codes(ground_truth, representation_function, num_variance_estimate,
                                  random_state)
    global_variances = np.var(codes, axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_variances) >= prune_threshold)
    if len(active) == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    votes = {name: _votes(ground_truth, representation_function, batch_size, num, random_state,
                          global_variances, active)
             for name, num in (("train", num_train), ("eval", num_eval))}
    assignment = np.argmax(votes["train"], axis=0)  # each dimension's most voted factor
    columns = np.arange(votes["train"].shape[1])
    scores = {f"{name}_accuracy": float(v[assignment, columns].sum() / v.sum())
              for name, v in votes.items()}
    return {**scores, "num_active_dims": int(len(active))}


def _votes(ground_truth, representation_function, batch_size, num_points, random_state,
           global_variances, active):
    """`(num_factors, num_codes)` counts of (fixed factor, dimension of least relative variance)."""
    num_factors = len(ground_truth.factor_sizes)
    fixed = random_state.integers(num_factors, size=num_points)
    factors = ground_truth.sample_factors(num_points * batch_size, random_state)
    factors = factors.reshape(num_points, batch_size, num_factors)
    points = np.arange(num_points)
    factors[points, :, fixed] = factors[points, 0, fixed][:, None]
    codes = utils.encode(ground_truth, representation_function,
                         factors.reshape(-1, num_factors), random_state)
    local_variances = np.var(codes.reshape(num_points, batch_size, -1), axis=1, ddof=1)
    ratio = local_variances[:, active] / global_variances[active]
    votes = np.zeros((num_factors, len(global_variances)), dtype=np.int64)
    np.add.at(votes, (fixed, active[np.argmin(ratio, axis=1)]), 1)
    return votes
