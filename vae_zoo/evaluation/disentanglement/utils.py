"""What the disentanglement metrics share: drawing factors and codes, discretising codes, and
mutual information (scikit-learn's, as disentanglement_lib computes it)."""

import numpy as np

ENCODE_BATCH = 1000  # images rendered and encoded at a time


def as_generator(random_state):
    """A `np.random.Generator` from a Generator or an int seed (the zoo's factor interface draws
    with `Generator.integers`)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def sklearn_seed(random_state):
    """An int seed for a scikit-learn estimator, drawn from `random_state`, so that its result
    depends only on the metric's seed."""
    return int(random_state.integers(2**31 - 1))


def encode(ground_truth, representation_function, factors, random_state):
    """`(len(factors), num_codes)` float64 codes of the images of `factors`, a batch at a time."""
    codes = []
    for start in range(0, len(factors), ENCODE_BATCH):
        images = ground_truth.sample_observations_from_factors(
            factors[start:start + ENCODE_BATCH], random_state)
        codes.append(np.asarray(representation_function(images), dtype=np.float64))
    codes = np.concatenate(codes)
    return codes.reshape(len(codes), -1)


def sample_codes(ground_truth, representation_function, num_points, random_state):
    """`(codes, factors)` of `num_points` images drawn uniformly from the ground truth:
    `(num_points, num_codes)` floats and `(num_points, num_factors)` ints."""
    factors = ground_truth.sample_factors(num_points, random_state)
    return encode(ground_truth, representation_function, factors, random_state), factors


def histogram_discretize(codes, num_bins=20):
    """Each code dimension binned into `num_bins` equal-width bins over its own range: ints in
    1..num_bins (disentanglement_lib's histogram discretiser)."""
    discrete = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1][:-1]
        discrete[:, i] = np.digitize(codes[:, i], edges)
    return discrete


def discrete_mutual_info(codes, factors):
    """`(num_codes, num_factors)` mutual information in nats between discrete columns."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(factors[:, j], codes[:, i])
                      for j in range(factors.shape[1])] for i in range(codes.shape[1])])


def discrete_entropy(factors):
    """`(num_factors,)` entropy in nats of each discrete column."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(column, column) for column in factors.T])
