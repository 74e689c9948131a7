import math

import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.vae import VAE

ESTIMATORS = ("mws", "mss")


@register_model
class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al., 2018): the KL split into index-code MI, total correlation and
    dimension-wise KL, each with its own weight.

    Per example, with one z ~ q(z|x) (the VAE's draw) and q(z) = 1/N sum_n q(z|x_n) the
    aggregate posterior over the N training examples:

        loss = -log p(x|z) + w(t) * [alpha * MI + beta * TC + gamma * DWKL]
        MI   = log q(z|x) - log q(z)                       index-code mutual information
        TC   = log q(z) - sum_j log q(z_j)                 total correlation
        DWKL = sum_j log q(z_j) - log p(z)                 dimension-wise KL

    The three add up to log q(z|x) - log p(z), so alpha = beta = gamma = 1 is the VAE's negative
    ELBO with the KL estimated at z. log q(z) and each log q(z_j) are estimated from the M codes
    of the batch, log q(z_i) ~ log sum_m W_im q(z_i|x_m), with the weights of `estimator`:
    `"mws"` (minibatch weighted sampling, W_im = 1/(N M)) or `"mss"` (minibatch stratified
    sampling, Chen et al. appendix C.2: W_ii = 1/N, one other code (the next in the batch, the
    last one's is the first) (N - M + 1) / (N (M - 1)), the rest 1/(M - 1)). Both are the
    paper's formulas: MSS's weights sum to 1, MWS's to 1/N, so MWS's terms are offset by
    constants (MI by +log N, TC by (latent_dim - 1) log N, DWKL by -latent_dim log N) that leave
    the gradients alone. The objective depends on the batch: on several replicas each estimates
    q(z) from its own examples (M is the per-replica batch).

    Tracked besides the loss, per example: the three terms (`index_code_mi`,
    `total_correlation`, `dimension_wise_kl`), and, as in every VAE, `reconstruction`, the
    closed-form `kl` and `elbo`.

    Args:
        train_size: int. N, the number of training examples; from the dataset, never a config.
        alpha: float. Weight on the index-code MI.
        beta: float. Weight on the total correlation (Chen et al.'s beta).
        gamma: float. Weight on the dimension-wise KL.
        estimator: str. `"mws"` or `"mss"`: how log q(z) is estimated from the batch.
        **kwargs: the arguments of `VAE`.
    """

    capabilities = Capabilities(batch_dependent_objective=True)
    objective_is_elbo = False  # the best epoch is the one of the lowest val_loss
    data_arguments = ("image_shape", "train_size")
    metric_names = ("reconstruction", "kl", "elbo", "index_code_mi", "total_correlation",
                    "dimension_wise_kl")

    def __init__(self, image_shape, train_size=None, alpha=1.0, beta=6.0, gamma=1.0,
                 estimator="mss", **kwargs):
        if not train_size or int(train_size) < 1:
            raise UserInputError(
                f"beta_tcvae weights its estimate of q(z) by the number of training examples, "
                f"but the dataset did not give it (train_size={train_size}); use a dataset whose "
                "size is known")
        if estimator not in ESTIMATORS:
            raise UserInputError(
                f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        if min(alpha, gamma) < 0:
            raise UserInputError("alpha and gamma must be >= 0")
        super().__init__(image_shape, beta=beta, **kwargs)

        # === Config ===
        self.train_size = int(train_size)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.estimator = estimator

    # --- The objective ----------------------------------------------------------------------

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        z, z_mean, z_log_var = outputs["z"], outputs["z_mean"], outputs["z_log_var"]
        log_qz_x = tf.reduce_sum(log_normal(z, z_mean, z_log_var), -1)
        log_pz = tf.reduce_sum(log_normal(z, 0.0, 0.0), -1)
        log_qz, log_qz_marginals = self.log_aggregate_posterior(z, z_mean, z_log_var)
        mi = log_qz_x - log_qz
        tc = log_qz - log_qz_marginals
        dwkl = log_qz_marginals - log_pz
        penalty = self.alpha * mi + self.beta * tc + self.gamma * dwkl
        return {**terms, "loss": terms["reconstruction"] + self.kl_weight() * penalty,
                "index_code_mi": mi, "total_correlation": tc, "dimension_wise_kl": dwkl}

    def log_aggregate_posterior(self, z, z_mean, z_log_var):
        """Batch estimates of log q(z_i) and sum_j log q(z_ij) for each code z_i: `(M,)` each."""
        # log q(z_ij | x_m) for every code i, example m and dimension j: (M, M, latent).
        log_density = log_normal(z[:, None], z_mean[None], z_log_var[None])
        log_weights = self.log_weights(tf.shape(z)[0])
        log_qz = tf.reduce_logsumexp(log_weights + tf.reduce_sum(log_density, -1), axis=1)
        log_qz_j = tf.reduce_logsumexp(log_weights[..., None] + log_density, axis=1)
        return log_qz, tf.reduce_sum(log_qz_j, -1)

    def log_weights(self, batch_size):
        """`(M, M)` log W_im of the estimator (the class docstring): row i weights the batch's
        posteriors q(z_i|x_m) in the estimate of q(z_i)."""
        n = float(self.train_size)
        m = tf.cast(batch_size, tf.float32)
        if self.estimator == "mws":
            return tf.fill([batch_size, batch_size], -tf.math.log(n * m))
        rows = tf.range(batch_size)
        column = rows[None, :]
        others = tf.maximum(m - 1.0, 1.0)
        weights = tf.where(column == rows[:, None], 1.0 / n,
                           tf.where(column == tf.math.floormod(rows + 1, batch_size)[:, None],
                                    (n - m + 1.0) / (n * others), 1.0 / others))
        return tf.math.log(weights)

    def schedule_values(self):
        return {"alpha": self.alpha, **super().schedule_values(), "gamma": self.gamma}

    def get_config(self):
        return {**super().get_config(), "train_size": self.train_size, "alpha": self.alpha,
                "gamma": self.gamma, "estimator": self.estimator}


def log_normal(z, mean, log_var):
    """log N(z; mean, exp(log_var)) per dimension, broadcasting."""
    return -0.5 * (math.log(2 * math.pi) + log_var + tf.square(z - mean) * tf.exp(-log_var))
