import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.discriminator import DiscriminatorTraining
from vae_zoo.models.vae import VAE


def permute_dims(z, seed=None):
    """Each column of `z` permuted independently across the *global* batch: a draw from the
    product of q(z)'s marginals (Kim & Mnih, 2018, Algorithm 1).

    Every replica gathers the global batch's codes, permutes them with the same stateless seed
    and keeps its own rows [r * local, (r + 1) * local), as `tf.distribute` splits a batch, so
    N replicas see the permutation one device would. Without a seed (evaluation) the draw is
    random. `z`: `(batch, latent)`; gradients do not flow through the permutation.
    """
    z = tf.stop_gradient(z)
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    replica = context.replica_id_in_sync_group if context is not None else 0
    local = tf.shape(z)[0]
    codes = context.all_gather(z, axis=0) if replicas > 1 else z
    shape = tf.shape(codes)
    if seed is None:
        keys = tf.random.uniform(shape)
    else:
        keys = tf.random.stateless_uniform(shape, seed=seed)
    order = tf.argsort(keys, axis=0)  # (global batch, latent): a permutation per column
    permuted = tf.transpose(tf.gather(tf.transpose(codes), tf.transpose(order), batch_dims=1))
    return permuted[replica * local : (replica + 1) * local]


@register_model
class FactorVAE(DiscriminatorTraining, VAE):
    """FactorVAE (Kim & Mnih, 2018, "Disentangling by Factorising"): the VAE objective plus
    gamma times the total correlation TC(z) = KL(q(z) || prod_j q(z_j)), per example

        loss = -log p(x|z) + w(t) * beta * KL(q(z|x) || N(0, I)) + gamma * [D_0(z) - D_1(z)]

    with z ~ q(z|x). The TC has no closed form; a discriminator D (logits `[D_0, D_1]`, "from
    q(z)" vs "from prod_j q(z_j)") estimates the density ratio: TC ~ E_q(z)[log D(z) / (1 - D(z))],
    the logit difference (the density-ratio trick). D trains with its own optimizer on the
    cross-entropy of telling the batch's codes (class 0) from the same codes with each dimension
    permuted across the batch (class 1):

        discriminator_loss = 1/2 [-log softmax(D(z))_0 - log softmax(D(perm(z)))_1]

    One step (`train_step`, `DiscriminatorTraining`'s) takes both gradients from one forward pass
    and applies the VAE's with `optimizer` to the encoder and decoder, then D's with
    `discriminator_optimizer` to D: disentanglement_lib's simultaneous update. The permuted codes
    come from the same batch (disentanglement_lib), not from a second half-batch as in the
    paper's Algorithm 1: the data pipeline, the step count and the global-batch averaging stay
    those of every zoo model, and each image is encoded once per step. The permutation is drawn
    over the global batch (`permute_dims`), so one step on N replicas equals one on one device.

    D works on z only and is not part of any serving endpoint (export carries the encoder and
    decoder); it computes in float32 whatever the precision of the networks.

    Args:
        gamma: float. Weight on the TC estimate.
        discriminator_units: list of ints. D's hidden Dense layers (leaky ReLU, slope 0.2); the
            paper and disentanglement_lib use 6 x 1000.
        discriminator_learning_rate: float or None. D's Adam learning rate; None (the default)
            takes the VAE's (`train.learning_rate`), as the paper and disentanglement_lib train
            both at the same rate (1e-4 each). The zoo trains the VAE at 1e-3: D at 1e-4 then
            stayed near chance (a 1-epoch dSprites run, seed 0: D accuracy 0.57, KL 49 nats,
            three times the VAE's), at the VAE's 1e-3 it reached KL 15.7 and a better ELBO
            (-111.5 against -149.0).
        discriminator_beta_1: float. D's Adam beta_1 (0.5 in the paper).
        discriminator_beta_2: float. D's Adam beta_2 (0.9 in the paper).
        **kwargs: the arguments of `VAE` (`beta` weighs the KL: 1 in the paper).
    """

    capabilities = Capabilities(batch_dependent_objective=True)
    objective_is_elbo = False  # the best epoch is the one of the lowest val_loss
    metric_names = ("reconstruction", "kl", "elbo", "tc", "discriminator_loss",
                    "discriminator_accuracy")

    def __init__(
        self,
        image_shape,
        gamma=40.0,
        discriminator_units=(1000,) * 6,
        discriminator_learning_rate=None,
        discriminator_beta_1=0.5,
        discriminator_beta_2=0.9,
        **kwargs,
    ):
        if gamma < 0:
            raise UserInputError(f"gamma must be >= 0, got {gamma}")
        super().__init__(image_shape, **kwargs)

        # === Layers === (leaky ReLU, slope 0.2: keras.activations.leaky_relu's default)
        self.add_discriminator(discriminator_units, 2, "leaky_relu", discriminator_learning_rate,
                               discriminator_beta_1, discriminator_beta_2)

        # === Config ===
        self.gamma = float(gamma)

    # --- The forward pass and the objective -------------------------------------------------

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        z = outputs["z"]
        permuted = permute_dims(z, seed=self.noise_seed(stream=1) if training else None)
        return {**outputs,
                "discriminator_logits": self.discriminator(z, training=training),
                "permuted_logits": self.discriminator(permuted, training=training)}

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        logits = outputs["discriminator_logits"]
        tc = logits[:, 0] - logits[:, 1]
        return {**terms, "loss": terms["loss"] + self.gamma * tc, "tc": tc,
                **self.discriminator_terms(outputs)}

    @staticmethod
    def discriminator_terms(outputs):
        """D's per-example cross-entropy (codes are class 0, permuted codes class 1) and its
        accuracy on both."""
        real, permuted = outputs["discriminator_logits"], outputs["permuted_logits"]
        real_nll = -tf.nn.log_softmax(real)[:, 0]
        permuted_nll = -tf.nn.log_softmax(permuted)[:, 1]
        hits = (tf.cast(real[:, 0] > real[:, 1], tf.float32)
                + tf.cast(permuted[:, 1] > permuted[:, 0], tf.float32))
        return {"discriminator_loss": 0.5 * (real_nll + permuted_nll),
                "discriminator_accuracy": 0.5 * hits}

    def discriminator_loss(self, outputs):
        return self.discriminator_terms(outputs)["discriminator_loss"]

    def schedule_values(self):
        return {**super().schedule_values(), "gamma": self.gamma}

    def get_config(self):
        return {
            **super().get_config(),
            "gamma": self.gamma,
            **self.discriminator_config(),
        }
