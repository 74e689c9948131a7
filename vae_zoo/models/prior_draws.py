import tensorflow as tf


class PriorDraws:
    """Mixin of a zoo model whose code z (`outputs["z"]`) is compared with draws from its prior
    N(0, I) (an MMD penalty, a discriminator): `call` adds as many prior draws as there are codes,
    `outputs["prior_z"]`. The model has a `Sampling` layer of its own for them (`self.sampling`).

    The draws go through the `Sampling` layer: with a training seed (stream 1 of the step), each
    example's row of the global batch gets the same draw on any number of replicas, and a test
    fixes them as it fixes every other noise (`fixed_noise`). Held-out steps draw afresh.
    """

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training)
        zeros = tf.zeros_like(outputs["z"])
        seed = self.noise_seed(1) if training else None
        return {**outputs, "prior_z": self.sampling((zeros, zeros), seed=seed)}
