import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.vae import VAE

DIP_TYPES = ("i", "ii")


@register_model
class DIPVAE(VAE):
    """DIP-VAE (Kumar et al., 2018): the ELBO plus a penalty that pushes the covariance of the
    aggregate posterior q(z) towards the identity, for disentangled codes.

    Per example, with the VAE's terms and a penalty computed over the batch of M examples:

        loss = -log p(x|z) + w(t) * beta * KL(q(z|x) || N(0, I)) + dip
        dip  = lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2
        C    = Cov_batch[mu(x)]                                  (type i)
        C    = E_batch[diag(sigma^2(x))] + Cov_batch[mu(x)]      (type ii: Cov of q(z))

    Cov_batch is the biased covariance over the batch (divided by M), as in disentanglement_lib
    (`compute_covariance_z_mean`). Every example carries the batch's penalty, so the batch loss is
    the mean ELBO term plus dip. The objective depends on the batch: on several replicas each
    penalises its own examples' covariance and the step averages the replicas' penalties. The KL
    schedule w(t) weighs the KL alone, not the penalty.

    Tracked besides the loss, per example: `dip` (the batch's penalty), and, as in every VAE,
    `reconstruction`, `kl` and `elbo`.

    Args:
        dip_type: str. `"i"` (covariance of the posterior means) or `"ii"` (of q(z)).
        lambda_od: float or None. Weight on the squared off-diagonal entries; None takes 10
            for type i and 1 for type ii, both in disentanglement_lib's sweep (1, 2, 5, 10, 20,
            50). Type ii at 10 collapsed in 2 of 3 dSprites seeds: a collapsed code (mu
            constant, sigma = 1) has Cov[q(z)] = I and no penalty, and the penalty on the
            correlated units of an escaping code holds it there (a 1-epoch dSprites run, seed
            0: mean training KL 0.15 nats at 10, 7.9 at 1; test ELBO -256.1 against -85.3).
        lambda_d: float or None. Weight on the squared distance of the diagonal from 1; None
            takes disentanglement_lib's choice: 10 * lambda_od for type i, lambda_od for type ii.
        **kwargs: the arguments of `VAE`.
    """

    capabilities = Capabilities(batch_dependent_objective=True)
    objective_is_elbo = False  # the best epoch is the one of the lowest val_loss
    metric_names = ("reconstruction", "kl", "elbo", "dip")

    def __init__(self, image_shape, dip_type="i", lambda_od=None, lambda_d=None, **kwargs):
        if dip_type not in DIP_TYPES:
            raise UserInputError(f"unknown dip_type {dip_type!r}; choose one of i, ii")
        if any(weight is not None and weight < 0 for weight in (lambda_od, lambda_d)):
            raise UserInputError("lambda_od and lambda_d must be >= 0")
        super().__init__(image_shape, **kwargs)

        # === Config ===
        self.dip_type = dip_type
        self.lambda_od = None if lambda_od is None else float(lambda_od)
        self.lambda_d = None if lambda_d is None else float(lambda_d)

    @property
    def off_diagonal_weight(self):
        """lambda_od, or its default for the type."""
        if self.lambda_od is not None:
            return self.lambda_od
        return 10.0 if self.dip_type == "i" else 1.0

    @property
    def diagonal_weight(self):
        """lambda_d, or its default for the type."""
        if self.lambda_d is not None:
            return self.lambda_d
        return self.off_diagonal_weight * (10.0 if self.dip_type == "i" else 1.0)

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        dip = self.dip_penalty(outputs["z_mean"], outputs["z_log_var"])
        dip = tf.fill(tf.shape(terms["loss"]), dip)
        return {**terms, "loss": terms["loss"] + dip, "dip": dip}

    def dip_penalty(self, z_mean, z_log_var):
        """The batch's penalty: a scalar."""
        centred = z_mean - tf.reduce_mean(z_mean, axis=0)
        batch = tf.cast(tf.shape(z_mean)[0], z_mean.dtype)
        covariance = tf.matmul(centred, centred, transpose_a=True) / batch
        if self.dip_type == "ii":
            covariance += tf.linalg.diag(tf.reduce_mean(tf.exp(z_log_var), axis=0))
        diagonal = tf.linalg.diag_part(covariance)
        off_diagonal = covariance - tf.linalg.diag(diagonal)
        return self.off_diagonal_weight * tf.reduce_sum(tf.square(off_diagonal)) + (
            self.diagonal_weight * tf.reduce_sum(tf.square(diagonal - 1.0)))

    def schedule_values(self):
        return {**super().schedule_values(), "lambda_od": self.off_diagonal_weight,
                "lambda_d": self.diagonal_weight}

    def get_config(self):
        return {**super().get_config(), "dip_type": self.dip_type, "lambda_od": self.lambda_od,
                "lambda_d": self.lambda_d}
