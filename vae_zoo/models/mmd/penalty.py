import tensorflow as tf

from vae_zoo.models.mmd.kernels import mmd
from vae_zoo.models.prior_draws import PriorDraws


class MMDPenalty(PriorDraws):
    """Mixin of a zoo model whose code z (`outputs["z"]`) is matched to N(0, I) by an MMD penalty
    against as many prior draws as there are codes (`PriorDraws`: `outputs["prior_z"]`):
    `loss_terms` adds `mmd_weight * MMD^2` to every example's loss and tracks `mmd`. The model has
    a `Sampling` layer (`self.sampling`), `mmd_weight`, `kernel` and `kernel_scales`.
    """

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        penalty = mmd(outputs["z"], outputs["prior_z"], self.kernel, self.kernel_scales)
        penalty = tf.fill(tf.shape(terms["loss"]), penalty)  # the batch's, on every example
        return {**terms, "loss": terms["loss"] + self.mmd_weight * penalty, "mmd": penalty}
