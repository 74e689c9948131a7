"""The Mutual Information Gap (Chen et al. 2018), as disentanglement_lib computes it: for each
factor, the gap between the two code dimensions most informative about it, over its entropy."""

import numpy as np

from vae_zoo.evaluation.disentanglement import utils


def compute_mig(ground_truth, representation_function, random_state, num_train=10000,
                num_bins=20):
    """The MIG with disentanglement_lib's defaults: codes of `num_train` random images are
    discretised into `num_bins` equal-width bins per dimension, and mutual information is
    scikit-learn's `mutual_info_score` (nats).

    Not comparable with Chen et al.'s MIG (sampled entropies over the whole dataset). Factors
    with a single value (zero entropy) are left out of the mean rather than dividing by zero.

    Args:
        ground_truth: a `GroundTruthFactors`.
        representation_function: images -> `(n, num_codes)` numpy codes (two or more codes).
        random_state: `np.random.Generator` or int seed.
        num_train: int. Images the mutual information is estimated on.
        num_bins: int. Histogram bins per code dimension.

    Returns:
        dict: `discrete_mig`, and `mutual_information` (`[num_codes][num_factors]`, nats).
    """
    random_state = utils.as_generator(random_state)
    codes, factors = utils.sample_codes(ground_truth, representation_function, num_train,
                                        random_state)
    return mig_of(codes, factors, num_bins)


def mig_of(codes, factors, num_bins=20):
    """The MIG of `(n, num_codes)` codes and `(n, num_factors)` discrete factors."""
    if codes.shape[1] < 2:
        raise ValueError("the MIG needs a code of two or more dimensions")
    info = utils.discrete_mutual_info(utils.histogram_discretize(codes, num_bins), factors)
    entropy = utils.discrete_entropy(factors)
    top = np.sort(info, axis=0)[::-1]
    varies = entropy > 0
    gaps = (top[0, varies] - top[1, varies]) / entropy[varies]
    return {"discrete_mig": float(np.mean(gaps)), "mutual_information": info.tolist()}
