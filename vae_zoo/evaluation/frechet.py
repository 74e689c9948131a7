"""The Fréchet distance of two Gaussians, and of the Gaussians fitted to two feature sets.

FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau 1982; FID, Heusel et al.
2017, is this in Inception features). Tr (S1 S2)^(1/2) is computed as the sum of the square roots
of the eigenvalues of S1^(1/2) S2 S1^(1/2), a symmetric PSD matrix with the same eigenvalues: no
complex square roots, unlike scipy.linalg.sqrtm of the non-symmetric S1 S2.
"""

import numpy as np


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """FD of N(mu1, sigma1) and N(mu2, sigma2); float."""
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    root1 = _psd_sqrt(sigma1)
    cross = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_root = np.sqrt(np.clip(cross, 0.0, None)).sum()
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root
    return float(max(distance, 0.0))


def feature_statistics(features):
    """The mean and covariance (ddof 1) of `(n, d)` features."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance_of(features1, features2):
    """FD between the Gaussians fitted to two `(n, d)` feature sets."""
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
