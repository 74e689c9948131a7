"""Shared by the Gaussian samplers: a draw mean + L eps, and checks of a stored Cholesky factor."""

import numpy as np
import tensorflow as tf

from vae_zoo.errors import UserInputError

JITTER = 1e-6  # added to covariance diagonals (relative to their mean), for a Cholesky factor


def cholesky(covariance):
    """The lower Cholesky factor of a covariance, with a small relative jitter on its diagonal
    (codes of unused latents have near-zero variance)."""
    covariance = np.asarray(covariance, "float64")
    scale = max(float(np.trace(covariance)) / len(covariance), 1e-12)
    return np.linalg.cholesky(covariance + JITTER * scale * np.eye(len(covariance)))


def check_cholesky(factors, path, key):
    """Lower triangular with a positive diagonal, or the file is refused."""
    factors = np.asarray(factors)
    if np.any(np.triu(factors, k=1) != 0) or np.any(np.diagonal(factors, axis1=-2, axis2=-1) <= 0):
        raise UserInputError(f"{path} is damaged: {key} is not a Cholesky factor (lower "
                             "triangular, positive diagonal)")


def gaussian_log_prob(codes, mean, factor):
    """log N(codes; mean, L L^T) with numpy, `(n,)`."""
    d = len(mean)
    solved = np.linalg.solve(factor, (np.asarray(codes, "float64") - mean).T)  # L^-1 (x - mu)
    return (-0.5 * (solved ** 2).sum(axis=0) - np.log(np.diag(factor)).sum()
            - 0.5 * d * np.log(2 * np.pi))


def affine_draw(mean, factor, eps):
    """mean + L eps for rows eps `(n, d)`: a MatMul (TFLite builtin)."""
    return mean + tf.matmul(eps, factor, transpose_b=True)
