import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.iwae import IWAE
from vae_zoo.models.vae.iwae import _log_mean_exp


@register_model
class MIWAE(IWAE):
    """MIWAE (Rainforth et al., 2018, "Tighter Variational Bounds are Not Necessarily Better"):
    the average of M independent K-sample importance-weighted bounds, per example

        loss = -(1/M) sum_m log (1/K) sum_k w_mk,   log w = log p(x|z) + log p(z) - log q(z|x)

    with M * K draws z_mk ~ q(z|x) by reparameterisation (the weights of IWAE and of the IW NLL,
    tempered by a KL schedule or `beta` as IWAE's are). M = 1 is IWAE with K samples, K = 1 the
    VAE's ELBO averaged over M draws. Rainforth et al. show that a large K weakens the encoder's
    gradient signal; MIWAE trades some tightness for a better-trained encoder (their MNIST
    setting M = 8, K = 8 of 64 draws).

    Tracked besides IWAE's terms: `miwae_bound` (the objective's bound); `iwae_bound` is the
    tighter M * K-sample bound from the same draws. The best epoch is chosen by
    `val_miwae_bound`, the bound it trains on.

    Args:
        k: int. K, the draws inside each importance-weighted bound.
        m: int. M, the independent bounds averaged.
        **kwargs: the arguments of `IWAE` (its `k` is K here).
    """

    metric_names = ("reconstruction", "kl", "elbo", "iwae_bound", "miwae_bound")
    bound_name = "miwae_bound"

    def __init__(self, image_shape, k=8, m=8, **kwargs):
        if int(m) < 1:
            raise UserInputError(f"m must be a positive integer, got {m}")
        super().__init__(image_shape, k=k, **kwargs)

        # === Config ===
        self.m = int(m)

    @property
    def draws(self):
        return self.m * self.k

    def bound(self, log_w):
        """`(M * K, batch)` -> the mean over M of the K-sample log-mean-exps: `(batch,)`."""
        groups = tf.reshape(log_w, [self.m, self.k, -1])
        return tf.reduce_mean(_log_mean_exp(tf.transpose(groups, [1, 0, 2])), axis=0)

    def get_config(self):
        return {**super().get_config(), "m": self.m}


@register_model
class CIWAE(IWAE):
    """CIWAE (Rainforth et al., 2018): a convex combination of the ELBO and the K-sample
    importance-weighted bound from the same K draws, per example

        loss = -[ beta_c * (1/K) sum_k log w_k + (1 - beta_c) * log (1/K) sum_k w_k ]

    beta_c = 1 is the VAE's ELBO (averaged over K draws), beta_c = 0 IWAE's bound. The weights
    are IWAE's (tempered by a KL schedule or `beta` as IWAE's are). Rainforth et al.'s MNIST
    setting is K = 64 with beta_c = 0.5.

    Tracked besides IWAE's terms: `ciwae_bound` (the objective's bound); the best epoch is chosen
    by it.

    Args:
        k: int. K, the draws per example.
        combination: float in [0, 1]. beta_c, the ELBO's share.
        **kwargs: the arguments of `IWAE`.
    """

    metric_names = ("reconstruction", "kl", "elbo", "iwae_bound", "ciwae_bound")
    bound_name = "ciwae_bound"

    def __init__(self, image_shape, k=64, combination=0.5, **kwargs):
        if not 0.0 <= combination <= 1.0:
            raise UserInputError(f"combination must be in [0, 1], got {combination}")
        super().__init__(image_shape, k=k, **kwargs)

        # === Config ===
        self.combination = float(combination)

    def bound(self, log_w):
        return (self.combination * tf.reduce_mean(log_w, axis=0)
                + (1.0 - self.combination) * _log_mean_exp(log_w))

    def get_config(self):
        return {**super().get_config(), "combination": self.combination}
