"""The SAP score (Kumar et al. 2018): for each factor, how much better the single code dimension
that predicts it best does than the second best, averaged over factors."""

import numpy as np

from vae_zoo.evaluation.disentanglement import utils


def compute_sap(ground_truth, representation_function, random_state, num_train=10000,
                num_test=5000, continuous_factors=False):
    """The SAP score with disentanglement_lib's defaults.

    The score of (dimension i, factor j) is, with `continuous_factors=False` (the default of
    disentanglement_lib's study), the `num_test` accuracy of a `LinearSVC(C=0.01,
    class_weight="balanced")` fitted on dimension i alone to predict factor j; with
    `continuous_factors=True`, the squared correlation of dimension i and factor j on the
    `num_train` codes. A linear classifier on one number cannot separate more than a few classes,
    so with many-valued discrete factors even a perfect code scores low (0.21 on ten factors of
    ten values); its known answers hold for `continuous_factors=True`.

    Args:
        ground_truth: a `GroundTruthFactors`.
        representation_function: images -> `(n, num_codes)` numpy codes (two or more codes).
        random_state: `np.random.Generator` or int seed.
        num_train: int. Codes the scores are fitted (or correlated) on.
        num_test: int. Codes the classifiers are scored on (discrete factors only).
        continuous_factors: bool. Score by squared correlation instead of classification.

    Returns:
        dict: `SAP_score`, and `score_matrix` (`[num_codes][num_factors]`).
    """
    random_state = utils.as_generator(random_state)
    codes, factors = utils.sample_codes(ground_truth, representation_function, num_train,
                                        random_state)
    if continuous_factors:
        scores = _squared_correlations(codes, factors)
    else:
        test = utils.sample_codes(ground_truth, representation_function, num_test, random_state)
        scores = _classification_accuracies(codes, factors, *test, random_state)
    top = np.sort(scores, axis=0)
    return {"SAP_score": float(np.mean(top[-1] - top[-2])), "score_matrix": scores.tolist()}


def _squared_correlations(codes, factors):
    scores = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            covariance = np.cov(codes[:, i], factors[:, j], ddof=1)
            if covariance[0, 0] > 1e-12:  # a constant dimension explains nothing
                scores[i, j] = covariance[0, 1] ** 2 / (covariance[0, 0] * covariance[1, 1])
    return scores


def _classification_accuracies(codes, factors, test_codes, test_factors, random_state):
    from sklearn.svm import LinearSVC

    scores = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            classifier = LinearSVC(C=0.01, class_weight="balanced",
                                   random_state=utils.sklearn_seed(random_state))
            classifier.fit(codes[:, i:i + 1], factors[:, j])
            scores[i, j] = classifier.score(test_codes[:, i:i + 1], test_factors[:, j])
    return scores
