import tensorflow as tf

from vae_zoo.config.schema import is_fraction
from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.vae.schedules import require_steps
from vae_zoo.models.vae.vae import VAE


def global_batch_mean(values):
    """The mean of per-example `values` over the global batch: on N replicas every replica
    all-reduces its sum and count, so the mean (and its gradient) is the one device's."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tf.reduce_mean(values)
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(values))
    count = context.all_reduce(tf.distribute.ReduceOp.SUM,
                               tf.cast(tf.size(values), values.dtype))
    return total / tf.stop_gradient(count)


@register_model
class BetaVAE(VAE):
    """beta-VAE (Higgins et al., 2017), optionally with controlled capacity (Burgess et al., 2018).

    Plain: the KL is weighted by `beta` > 1, trading reconstruction for a more factorised latent.
    With `capacity=True` the penalty is `gamma * |mean_batch KL - C|`, where the target capacity C
    rises linearly from 0 to `capacity_max` nats over `capacity_steps` optimizer steps; `beta` is
    unused. The KL inside the absolute value is the mean over the global batch, as in
    disentanglement_lib's `AnnealedVAE` (`gamma * |kl_loss - c|` on the batch-mean `kl_loss`), so
    C bounds the average rate and each image's KL may vary with the image; every example
    carries the batch's penalty. (A per-example `|KL(x) - C|` pins every image's KL to C; at
    gamma = 1000 the encoder met it with a posterior that ignores x: 0/10 active units on the
    default MNIST-sample run, 8/10 with the batch mean; at gamma = 10 both forms learn.)
    Held-out losses (validation, test) use C = `capacity_max`, the objective the ramp ends at,
    as they use w = 1: with C(t) the validation loss of an early, emptier epoch (small KL, small
    C) is the smallest, and it would pick the best checkpoint.

    The best epoch is chosen by that objective at full weights (`val_loss`), not by the ELBO: a
    beta-VAE trades ELBO for a factorised code on purpose.

    A KL schedule (`kl_schedule`, see `VAE`) multiplies the whole penalty: `w(t) * beta * KL`, or
    `w(t) * gamma * |KL - C|` with capacity (an effective gamma rising with w; both ramps read the
    same step counter).

    Args:
        beta: float. KL weight of the plain variant.
        capacity: bool. Use the capacity-controlled objective.
        gamma: float. Weight on |KL - C| in the capacity objective. The default, 10, is the
            best of the stated sweep over 1000, 100 and 10 on the default MNIST-sample run (see
            the README); disentanglement_lib's 1000 suits its 300,000-step runs, and in the
            zoo's 1,140-step default the |KL - C| gradients, 1000 times the reconstruction's,
            fill Adam's second moments and the encoder learns little (reconstruction 191 nats
            against 96 at gamma = 10).
        capacity_max: float. Final capacity C_max, in nats.
        capacity_steps: int or float. Training steps over which C rises to C_max; a float
            <= 1 is a fraction of the run's training steps (see `VAE`'s `kl_schedule_steps`).
            The default, the first two thirds of the run, reaches C_max with a third left for
            the KL to settle there (disentanglement_lib's annealed VAE ramps over 100,000 of
            its 300,000 steps; the old default, 10,000 steps, left C at 2.85 of 25 nats in a
            1,140-step run, with no active latent).
        **kwargs: the arguments of `VAE`.
    """

    schedule_lengths = {**VAE.schedule_lengths, "capacity_steps": 0}
    objective_is_elbo = False  # the KL reweighted on purpose: the best epoch is the lowest val_loss

    def __init__(
        self,
        image_shape,
        beta=4.0,
        capacity=False,
        gamma=10.0,
        capacity_max=25.0,
        capacity_steps=2 / 3,
        **kwargs,
    ):
        require_steps("capacity_steps", capacity_steps, capacity)
        if capacity_max < 0 or gamma < 0:
            raise UserInputError("capacity_max and gamma must be >= 0")
        super().__init__(image_shape, beta=beta, **kwargs)

        # === Config ===
        self.capacity = bool(capacity)
        self.gamma = float(gamma)
        self.capacity_max = float(capacity_max)
        self.capacity_steps = (capacity_steps if is_fraction(capacity_steps)
                               else int(capacity_steps))
        if self.capacity:  # the penalty reads the global batch's mean KL
            self.capabilities = Capabilities(batch_dependent_objective=True)

    @classmethod
    def schedules_in_use(cls, args):
        capacity = {"capacity_steps"} if args.get("capacity") else set()
        return super().schedules_in_use(args) | capacity

    def current_capacity(self):
        """C after the optimizer steps taken so far (`steps_trained`); C_max in held-out steps."""
        if self._held_out:
            return tf.constant(self.capacity_max)
        step = tf.cast(self.steps_trained, tf.float32)
        return tf.minimum(self.capacity_max, self.capacity_max * step / self.capacity_steps)

    def regularizer(self, kl):
        if not self.capacity:
            return super().regularizer(kl)
        capacity = tf.cast(self.current_capacity(), kl.dtype)
        penalty = self.gamma * tf.abs(global_batch_mean(kl) - capacity)
        return tf.fill(tf.shape(kl), penalty)

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
