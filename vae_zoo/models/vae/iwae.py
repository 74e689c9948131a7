import math

import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.vae import VAE


@register_model
class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al., 2016): the VAE's model, a tighter bound.

    Per example, with z_1..z_k ~ q(z|x) drawn by reparameterisation and
    `log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x)` (the weights of
    `log_importance_weights`, which the IW NLL metric also uses):

        loss = -log (1/k) sum_k w_k          (the negative k-sample bound, in nats)

    Gradients flow through the reparameterised z_k: the standard IWAE estimator, which weights each
    sample's gradient by its normalised weight w_k / sum_j w_j. k = 1 is the VAE's negative ELBO
    (with the KL estimated at z). A KL schedule and `beta` temper the prior/posterior ratio inside
    each weight, `log p(x|z_k) + w(t) * beta * (log p(z_k) - log q(z_k|x))`; at w * beta = 1
    (the default) the loss is Burda et al.'s bound.

    Tracked besides the loss, per example: `iwae_bound` (the k-sample bound on log p(x)) and, for
    comparison with the other models, `reconstruction` (-log p(x|z_k) averaged over the k draws),
    `kl` (in closed form) and `elbo = -(reconstruction + kl)`.

    Args:
        k: int. Importance samples per example in training (Burda et al. use 5 and 50). The
            decoder runs k times per example, so a step costs about k VAE decoder passes.
        **kwargs: the arguments of `VAE`.
    """

    metric_names = ("reconstruction", "kl", "elbo", "iwae_bound")
    bound_name = "iwae_bound"  # the bound the loss is the negative of (a variant's own)

    def __init__(self, image_shape, k=5, **kwargs):
        if int(k) < 1:
            raise UserInputError(f"k must be a positive integer, got {k}")
        super().__init__(image_shape, **kwargs)

        # === Config ===
        self.k = int(k)

    def call(self, inputs, training=None):
        x = self.as_batch(inputs)["x"]
        z_mean, z_log_var = self.encoder(x, training=training)
        log_px, log_ratio = self.importance_terms(x, z_mean, z_log_var, self.draws, training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "log_px": log_px,
                "log_ratio": log_ratio}

    @property
    def draws(self):
        """Draws z ~ q(z|x) per example and step."""
        return self.k

    def bound(self, log_w):
        """The bound on log p(x) from the weights `(draws, batch)`: the k-sample bound here; a
        variant that combines the same weights otherwise overrides this and `bound_name`."""
        return _log_mean_exp(log_w)

    def tempered_log_weights(self, outputs):
        """`(draws, batch)` log p(x|z) + w(t) * beta * (log p(z) - log q(z|x)): the weights the
        loss combines (the untempered ones at w * beta = 1)."""
        return outputs["log_px"] + self.kl_weight() * self.beta * outputs["log_ratio"]

    def loss_terms(self, batch, outputs):
        log_px, log_ratio = outputs["log_px"], outputs["log_ratio"]  # (k, batch) each
        tempered = self.tempered_log_weights(outputs)
        reconstruction = -tf.reduce_mean(log_px, axis=0)
        kl = self.kl_divergence(outputs)
        return {
            "loss": -self.bound(tempered),
            "reconstruction": reconstruction,
            "kl": kl,
            "elbo": -(reconstruction + kl),
            "iwae_bound": _log_mean_exp(log_px + log_ratio),  # over every draw
            self.bound_name: self.bound(log_px + log_ratio),
        }

    def selection_metric(self, stage=0):
        """The bound it trains on, tighter than the ELBO (beta = 1)."""
        return (f"val_{self.bound_name}", "max") if self.beta == 1.0 else ("val_loss", "min")

    def get_config(self):
        return {**super().get_config(), "k": self.k}


def _log_mean_exp(log_w):
    """log (1/k) sum_k exp(log_w_k) over axis 0, stably."""
    return tf.reduce_logsumexp(log_w, axis=0) - math.log(log_w.shape[0])
