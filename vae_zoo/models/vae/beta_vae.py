import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.vae import VAE


@register_model
class BetaVAE(VAE):
    """beta-VAE (Higgins et al., 2017), optionally with controlled capacity (Burgess et al., 2018).

    Plain: the KL is weighted by `beta` > 1, trading reconstruction for a more factorised latent.
    With `capacity=True` the penalty is `gamma * |KL - C|`, where the target capacity C rises
    linearly from 0 to `capacity_max` nats over `capacity_steps` optimizer steps; `beta` is unused.

    A KL schedule (`kl_schedule`, see `VAE`) multiplies the whole penalty: `w(t) * beta * KL`, or
    `w(t) * gamma * |KL - C|` with capacity (an effective gamma rising with w; both ramps read the
    same step counter).

    Args:
        beta: float. KL weight of the plain variant.
        capacity: bool. Use the capacity-controlled objective.
        gamma: float. Weight on |KL - C| in the capacity objective.
        capacity_max: float. Final capacity C_max, in nats.
        capacity_steps: int. Training steps over which C rises to C_max.
        **kwargs: the arguments of `VAE`.
    """

    def __init__(
        self,
        image_shape,
        beta=4.0,
        capacity=False,
        gamma=1000.0,
        capacity_max=25.0,
        capacity_steps=100000,
        **kwargs,
    ):
        if int(capacity_steps) < 1:
            raise UserInputError(f"capacity_steps must be >= 1, got {capacity_steps}")
        if capacity_max < 0 or gamma < 0:
            raise UserInputError("capacity_max and gamma must be >= 0")
        super().__init__(image_shape, beta=beta, **kwargs)

        # === Config ===
        self.capacity = bool(capacity)
        self.gamma = float(gamma)
        self.capacity_max = float(capacity_max)
        self.capacity_steps = int(capacity_steps)

    def current_capacity(self):
        """C after the optimizer steps taken so far (`steps_trained`)."""
        step = tf.cast(self.steps_trained, tf.float32)
        return tf.minimum(self.capacity_max, self.capacity_max * step / self.capacity_steps)

    def regularizer(self, kl):
        if not self.capacity:
            return super().regularizer(kl)
        capacity = tf.cast(self.current_capacity(), kl.dtype)
        return self.gamma * tf.abs(kl - capacity)

    def schedule_values(self):
        values = super().schedule_values()
        if not self.capacity:
            return values
        del values["beta"]  # unused by the capacity objective
        return {"gamma": self.gamma, "capacity": float(self.current_capacity()), **values}

    def get_config(self):
        return {
            **super().get_config(),
            "capacity": self.capacity,
            "gamma": self.gamma,
            "capacity_max": self.capacity_max,
            "capacity_steps": self.capacity_steps,
        }
