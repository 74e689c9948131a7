"""DCI (Eastwood & Williams 2018): from the importance of each code dimension for predicting
each factor (gradient boosted trees), disentanglement (each dimension matters for one factor),
completeness (each factor is captured by one dimension) and informativeness (test accuracy)."""

import numpy as np

from vae_zoo.evaluation.disentanglement import utils


def compute_dci(ground_truth, representation_function, random_state, num_train=10000,
                num_test=5000):
    """DCI with disentanglement_lib's defaults: one scikit-learn `GradientBoostingClassifier`
    (its defaults, seeded from `random_state`) per factor on `num_train` codes; importances are
    its `feature_importances_`; informativeness is its accuracy on `num_test` new codes.

    Args:
        ground_truth: a `GroundTruthFactors`.
        representation_function: images -> `(n, num_codes)` numpy codes.
        random_state: `np.random.Generator` or int seed.
        num_train: int. Codes the classifiers are fitted on.
        num_test: int. Codes their accuracy is measured on.

    Returns:
        dict: `disentanglement`, `completeness`, `informativeness_train`,
        `informativeness_test`, and `importance_matrix` (`[num_codes][num_factors]`).
    """
    random_state = utils.as_generator(random_state)
    train = utils.sample_codes(ground_truth, representation_function, num_train, random_state)
    test = utils.sample_codes(ground_truth, representation_function, num_test, random_state)
    importance, train_accuracy, test_accuracy = importance_matrix(*train, *test, random_state)
    return {"disentanglement": disentanglement(importance),
            "completeness": completeness(importance),
            "informativeness_train": train_accuracy,
            "informativeness_test": test_accuracy,
            "importance_matrix": importance.tolist()}


def importance_matrix(train_codes, train_factors, test_codes, test_factors, random_state):
    """`(importance (num_codes, num_factors), mean train accuracy, mean test accuracy)`."""
    from sklearn.ensemble import GradientBoostingClassifier

    importance = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    train_accuracy, test_accuracy = [], []
    for j in range(train_factors.shape[1]):
        model = GradientBoostingClassifier(random_state=utils.sklearn_seed(random_state))
        model.fit(train_codes, train_factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_accuracy.append(model.score(train_codes, train_factors[:, j]))
        test_accuracy.append(model.score(test_codes, test_factors[:, j]))
    return importance, float(np.mean(train_accuracy)), float(np.mean(test_accuracy))


def _one_minus_entropy(probabilities, base):
    """1 - entropy (in `base`) of each column of a non-negative matrix, normalised per column."""
    from scipy.stats import entropy

    return 1.0 - entropy(probabilities + 1e-11, base=base, axis=0)


def disentanglement(importance):
    """Per code dimension, 1 - entropy of its importance over factors (base num_factors),
    weighted by the dimension's share of all importance."""
    per_code = _one_minus_entropy(importance.T, base=importance.shape[1])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def completeness(importance):
    """Per factor, 1 - entropy of its importance over code dimensions (base num_codes),
    weighted by the factor's share of all importance."""
    per_factor = _one_minus_entropy(importance, base=importance.shape[0])
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))
