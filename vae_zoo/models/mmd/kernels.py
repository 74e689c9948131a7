"""The maximum mean discrepancy between a batch of codes and draws from the prior N(0, I)."""

import tensorflow as tf

from vae_zoo.errors import UserInputError

KERNELS = ("imq", "rbf")
# Tolstikhin et al.'s code (and pythae's default) sums the IMQ kernel over these scales of C.
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def check_kernel(kernel, scales):
    """Refuses an unknown kernel or a scale that is not positive (config errors)."""
    if kernel not in KERNELS:
        raise UserInputError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    if not scales or min(scales) <= 0:
        raise UserInputError(f"kernel_scales must be positive numbers, got {scales}")


def kernel_matrix(a, b, kernel, scales):
    """`(n, m)` k(a_i, b_j), summed over `scales` s of the base constant C = 2 d (the prior's
    variance is 1; d is the code size):

        imq: s C / (s C + ||a_i - b_j||^2)      (inverse multiquadric, Tolstikhin et al., 2018)
        rbf: exp(-||a_i - b_j||^2 / (s C))      (Gaussian)
    """
    base = 2.0 * tf.cast(tf.shape(a)[-1], a.dtype)
    distances = tf.reduce_sum(tf.square(a[:, None, :] - b[None, :, :]), axis=-1)
    total = tf.zeros_like(distances)
    for scale in scales:
        c = scale * base
        total += c / (c + distances) if kernel == "imq" else tf.exp(-distances / c)
    return total


def mmd(z, prior_z, kernel="imq", scales=IMQ_SCALES):
    """The unbiased estimate of MMD^2(q(z), p(z)) from n codes `z` and n prior draws `prior_z`,
    `(n, d)` each (Tolstikhin et al., 2018, Algorithm 2): a scalar,

        1 / (n (n - 1)) sum_{i != j} [k(z_i, z_j) + k(p_i, p_j)] - 2 / n^2 sum_{i, j} k(z_i, p_j)
    """
    n = tf.cast(tf.shape(z)[0], z.dtype)

    def off_diagonal_sum(k):
        return tf.reduce_sum(k) - tf.linalg.trace(k)

    same = (off_diagonal_sum(kernel_matrix(z, z, kernel, scales))
            + off_diagonal_sum(kernel_matrix(prior_z, prior_z, kernel, scales)))
    cross = tf.reduce_sum(kernel_matrix(z, prior_z, kernel, scales))
    return same / tf.maximum(n * (n - 1.0), 1.0) - 2.0 * cross / (n * n)
