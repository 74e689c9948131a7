import tensorflow as tf

from vae_zoo.models.mmd.kernels import mmd


class MMDPenalty:
    """Mixin of a zoo model whose code z (`outputs["z"]`) is matched to N(0, I) by an MMD penalty:
    `call` adds as many prior draws as there are codes (`prior_z`), `loss_terms` adds
    `mmd_weight * MMD^2` to every example's loss and tracks `mmd`. The model has a `Sampling`
    layer (`self.sampling`), `mmd_weight`, `kernel` and `kernel_scales`.

    The draws go through the `Sampling` layer: with a training seed (stream 1 of the step), each
    example's row of the global batch gets the same draw on any number of replicas, and a test
    fixes them as it fixes every other noise. Held-out steps draw afresh.
    """

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training)
        zeros = tf.zeros_like(outputs["z"])
        seed = self.noise_seed(1) if training else None
        return {**outputs, "prior_z": self.sampling((zeros, zeros), seed=seed)}

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        penalty = mmd(outputs["z"], outputs["prior_z"], self.kernel, self.kernel_scales)
        penalty = tf.fill(tf.shape(terms["loss"]), penalty)  # the batch's, on every example
        return {**terms, "loss": terms["loss"] + self.mmd_weight * penalty, "mmd": penalty}
