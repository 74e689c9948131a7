"""The BetaVAE score (Higgins et al. 2017): how well a linear classifier tells, from the mean
absolute difference of the codes of image pairs, which factor the pairs share."""

import numpy as np

from vae_zoo.evaluation.disentanglement import utils


def compute_beta_vae(ground_truth, representation_function, random_state, batch_size=64,
                     num_train=10000, num_eval=5000):
    """The BetaVAE score with disentanglement_lib's defaults.

    Each point: a factor k is drawn, then `batch_size` pairs of factor tuples that agree on k;
    the point's feature is the mean over pairs of |code(a) - code(b)|, its label k. A logistic
    regression is fitted on `num_train` points and scored on `num_eval` new ones.

    Args:
        ground_truth: a `GroundTruthFactors`.
        representation_function: images -> `(n, num_codes)` numpy codes (a model's mean code).
        random_state: `np.random.Generator` or int seed.
        batch_size: int. Pairs per point.
        num_train: int. Points to fit the classifier on.
        num_eval: int. Points to score it on.

    Returns:
        dict: `train_accuracy`, `eval_accuracy`.
    """
    from sklearn.linear_model import LogisticRegression

    random_state = utils.as_generator(random_state)
    train_x, train_y = _points(ground_truth, representation_function, batch_size, num_train,
                               random_state)
    model = LogisticRegression(random_state=utils.sklearn_seed(random_state))
    model.fit(train_x, train_y)
    eval_x, eval_y = _points(ground_truth, representation_function, batch_size, num_eval,
                             random_state)
    return {"train_accuracy": float(model.score(train_x, train_y)),
            "eval_accuracy": float(model.score(eval_x, eval_y))}


def _points(ground_truth, representation_function, batch_size, num_points, random_state):
    """`(features, labels)` of `num_points` points, the pairs of many points encoded together."""
    labels = random_state.integers(len(ground_truth.factor_sizes), size=num_points)
    first = ground_truth.sample_factors(num_points * batch_size, random_state)
    second = ground_truth.sample_factors(num_points * batch_size, random_state)
    shared = np.repeat(labels, batch_size)
    rows = np.arange(len(first))
    second[rows, shared] = first[rows, shared]
    codes = [utils.encode(ground_truth, representation_function, f, random_state)
             for f in (first, second)]
    difference = np.abs(codes[0] - codes[1]).reshape(num_points, batch_size, -1)
    return difference.mean(axis=1), labels
