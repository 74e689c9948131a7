import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.layers import Sampling
from vae_zoo.models.ae.ae import AE
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.discriminator import DiscriminatorTraining
from vae_zoo.models.prior_draws import PriorDraws


@register_model
class AdversarialAE(DiscriminatorTraining, PriorDraws, AE):
    """Adversarial autoencoder (Makhzani et al., 2016, "Adversarial Autoencoders"): the AE's
    networks, whose aggregate code distribution q(z) is matched to the prior p(z) = N(0, I) by a
    discriminator on z (an MLP with one logit; d(z) = sigmoid(logit), the probability that z is
    a prior draw) that tells prior draws (real) from codes (fake). Per example, z = E(x) and
    z~ ~ N(0, I), the example's own prior draw:

        loss               = -log p(x|z) + adversarial_weight * adversarial_loss
        adversarial_loss   = -log d(z)                                   (d fooled on the code)
        discriminator_loss = 1/2 [-log d(z~) - log(1 - d(z))]

    the objective of pythae's `Adversarial_AE` (non-saturating generator loss, d's binary
    cross-entropy halved as there), computed from the logits (softplus) for stability. WAE-MMD
    matches the same aggregate posterior to the same prior with an MMD; here a learned
    discriminator does it.

    One step (`train_step`, `DiscriminatorTraining`'s) takes both gradients from one forward
    pass, at the same weights, and applies the autoencoder's with `optimizer` and d's with
    `discriminator_optimizer`: a simultaneous update, as factor_vae's. The paper alternates a
    reconstruction phase and a regularisation phase per mini-batch instead; the simultaneous
    step keeps every zoo model's step count, data pipeline and global-batch averaging, and
    encodes each image once per step. Every term is per example (the prior draw is the
    example's own, `PriorDraws`, drawn for its row of the global batch), so one step on N
    replicas equals one on one device.

    The encoder is deterministic (z = E(x), the AE's linear float32 code head), where pythae
    draws z from a Gaussian q(z|x): the paper's Section 2.1 offers both (and a universal
    approximator). Deterministic because the adversarial term matches q(z) to the prior whichever
    the encoder, and a Gaussian q(z|x) would give no density either (the term is no KL: there
    would still be no ELBO), only noisier codes; the model then has exactly `ae`'s networks and
    serving endpoints (its export is `ae`'s, tested in TestAE), and compares with `ae`, the RAEs
    and `wae_mmd` on the same deterministic codes.

    It has no density (`has_density=False`, as `ae`): it reports the reconstruction and the code
    statistics; `sample(n)` decodes z ~ N(0, I), which the adversarial term makes the
    generator. The best epoch is chosen by the validation reconstruction (`selection_metric`,
    `ae`'s): the adversarial terms measure d against the encoder, they do not fall as the model
    improves. Tracked beside the loss, per example: `reconstruction`, `adversarial_loss` and
    `discriminator_loss` (log 2 ~ 0.69 at chance).

    The discriminator is an MLP on z in float32, trained only in the step, in no serving endpoint
    and so in no export; its Adam state is saved with the autoencoder's in `.keras` files and
    step checkpoints.

    Args:
        adversarial_weight: float. Weight on the adversarial (generator) loss. 1 is pythae's
            default: its autoencoder loss is (1 - s) * reconstruction + s * adversarial with
            s = 0.5, which is 0.5 * (reconstruction + 1 * adversarial).
        discriminator_units: list of ints. d's hidden Dense layers (ReLU). [256] is pythae's
            default discriminator (one hidden layer of 256); the paper's MNIST discriminator has
            two of 1000.
        discriminator_learning_rate: float or None. d's Adam learning rate; None (the default)
            takes the autoencoder's (`train.learning_rate`), as pythae trains both at one rate
            (1e-4 each by default; the zoo trains at 1e-3).
        discriminator_beta_1: float. d's Adam beta_1 (0.9: Adam's default, pythae's).
        discriminator_beta_2: float. d's Adam beta_2 (0.999: Adam's default, pythae's).
        **kwargs: the arguments of `AE`.
    """

    capabilities = Capabilities(has_density=False)
    metric_names = ("reconstruction", "adversarial_loss", "discriminator_loss")

    def __init__(
        self,
        image_shape,
        adversarial_weight=1.0,
        discriminator_units=(256,),
        discriminator_learning_rate=None,
        discriminator_beta_1=0.9,
        discriminator_beta_2=0.999,
        **kwargs,
    ):
        if adversarial_weight < 0:
            raise UserInputError(f"adversarial_weight must be >= 0, got {adversarial_weight}")
        super().__init__(image_shape, **kwargs)

        # === Layers ===
        self.sampling = Sampling(dtype="float32", name="prior_draws")
        self.add_discriminator(discriminator_units, 1, "relu", discriminator_learning_rate,
                               discriminator_beta_1, discriminator_beta_2)

        # === Config ===
        self.adversarial_weight = float(adversarial_weight)

    # --- The forward pass and the objective -------------------------------------------------

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)  # z, x_params, prior_z
        return {**outputs,
                "code_logits": self.discriminator(outputs["z"], training=training)[:, 0],
                "prior_logits": self.discriminator(outputs["prior_z"], training=training)[:, 0]}

    @staticmethod
    def adversarial_terms(outputs):
        """Per example: the generator's loss -log d(z) and d's 1/2 [-log d(z~) - log(1 - d(z))],
        with -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l)."""
        codes, prior = outputs["code_logits"], outputs["prior_logits"]
        return {"adversarial_loss": tf.nn.softplus(-codes),
                "discriminator_loss": 0.5 * (tf.nn.softplus(-prior) + tf.nn.softplus(codes))}

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        adversarial = self.adversarial_terms(outputs)
        loss = terms["loss"] + self.adversarial_weight * adversarial["adversarial_loss"]
        return {**terms, **adversarial, "loss": loss}

    def discriminator_loss(self, outputs):
        return self.adversarial_terms(outputs)["discriminator_loss"]

    def schedule_values(self):
        return {"adversarial_weight": self.adversarial_weight}

    def get_config(self):
        return {**super().get_config(), "adversarial_weight": self.adversarial_weight,
                **self.discriminator_config()}
