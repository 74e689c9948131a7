import keras
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.prior_draws import PriorDraws
from vae_zoo.models.vae import VAE


def global_mean(per_example):
    """The mean of a per-example tensor over the *global* batch: every replica gets the same
    value (one all-reduce), so decisions taken from it agree across replicas."""
    local = tf.nn.compute_average_loss(per_example)  # local sum / global batch
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local
    return context.all_reduce(tf.distribute.ReduceOp.SUM, local)


def equilibrium_gates(real_bce, prior_bce, equilibrium, margin):
    """pythae's equilibrium rule, which keeps the game in balance: from the discriminator's
    batch-mean cross-entropies on data (`real_bce`) and on decoded prior draws (`prior_bce`),
    `(update_discriminator, update_decoder)`, two bool scalars.

    The discriminator skips its update when it is winning, either cross-entropy below
    `equilibrium - margin`; the decoder skips its update when the discriminator is losing, either
    above `equilibrium + margin`; when both would skip, both update."""
    low, high = equilibrium - margin, equilibrium + margin
    discriminator = tf.logical_not(tf.logical_or(real_bce < low, prior_bce < low))
    decoder = tf.logical_not(tf.logical_or(real_bce > high, prior_bce > high))
    neither = tf.logical_not(tf.logical_or(discriminator, decoder))
    return tf.logical_or(discriminator, neither), tf.logical_or(decoder, neither)


def apply_if(optimizer, gradients, variables, condition):
    """`optimizer.apply(gradients, variables)` when `condition` (a bool scalar, equal on every
    replica), else nothing at all: the variables, the optimizer's moments and its `iterations`
    stay as they are (a zero gradient would still move Adam by its moments).

    Called in a replica context. A strategy that all-reduces gradients through `merge_call`
    (MirroredStrategy on CPUs, MultiWorkerMirroredStrategy) does not allow a `merge_call` inside
    a `tf.cond` in a replica context, so the condition is taken in the cross-replica context and
    the optimizer applied there for each replica: Keras' `LossScaleOptimizer` skips non-finite
    steps the same way. Without `merge_call` the `tf.cond` is taken in the replica context, where
    every replica takes the same branch since the condition is the same. Tested on one device
    (no merge_call) and on MirroredStrategy over 2 CPUs (merge_call); not yet across workers.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        raise ValueError("apply_if() must be called in a replica context")

    def apply_one(gradients):
        optimizer.apply(gradients, variables)

    def apply():
        apply_one(gradients)

    if tf.__internal__.distribute.strategy_supports_no_merge_call():
        tf.cond(condition, apply, lambda: None)
        return

    def cross_replica(distribution, gradients, condition):
        # The same value on every replica (`equilibrium_gates` of global means): the first's.
        condition = distribution.experimental_local_results(condition)[0]

        def apply_each():
            distribution.extended.call_for_each_replica(apply_one, args=(gradients,))

        tf.cond(condition, apply_each, lambda: None)

    context.merge_call(cross_replica, args=(gradients, condition))


@register_model
class VAEGAN(PriorDraws, VAE):
    """VAE-GAN (Larsen et al., 2016, "Autoencoding beyond pixels using a learned similarity
    metric"): a VAE (Gaussian q(z|x), p(z) = N(0, I), z reparameterised) whose reconstruction is
    measured in the hidden features Dis_l of a discriminator on images, the "learned similarity"
    that replaces the pixel likelihood. Per example, with x~ the decoder's mean at z ~ q(z|x) and
    x_p its mean at z_p ~ N(0, I) (the example's own prior draw, `PriorDraws`), D(.) =
    sigmoid(logit):

        feature_reconstruction = sum_j (Dis_l(x)_j - Dis_l(x~)_j)^2
        encoder_loss           = w(t) * beta * KL(q(z|x) || p(z)) + feature_reconstruction
        discriminator_loss     = -log D(x) - log(1 - D(x_p))         (real_bce + prior_bce)
        decoder_loss           = (1 - s) * feature_reconstruction - s * discriminator_loss
        loss                   = encoder_loss + decoder_loss + discriminator_loss

    pythae 0.1.2's `VAEGAN` (s = `adversarial_loss_scale`, the KL by TFP as the VAE's, the
    cross-entropies from the logits with softplus for stability; pythae's code has had the
    feature term both with and without a factor 1/2, which only rescales it against the KL: here
    the plain sum of squares). The reconstructions x~ are not shown to the discriminator as
    fakes, as in pythae (the paper adds them). `loss` is pythae's logged sum; no single loss has
    the step's gradients.

    Three optimizers, each on its own variables and its own loss, all gradients taken from one
    forward pass at the same weights: `optimizer` the encoder on `encoder_loss`,
    `decoder_optimizer` the decoder (and a learned likelihood scale) on `decoder_loss`,
    `discriminator_optimizer` the discriminator on `discriminator_loss`, each averaged over the
    global batch. pythae's trainer accumulates the later losses' gradients into the earlier
    networks (`backward` on each loss in turn, zeroing only the next optimizer's gradients), so
    its encoder steps on KL + (2 - s) * feature_reconstruction and its decoder on
    (1 - s) * (feature_reconstruction + discriminator_loss), which for s < 1 helps the
    discriminator; here each network takes the gradient of its own loss only, as the paper's
    Algorithm 1 updates each network by its own loss.

    Equilibrium gating (`equilibrium_gating`, pythae's rule, `equilibrium_gates`): from the
    global-batch means of `real_bce` and `prior_bce`, the discriminator skips its update while
    either is below `equilibrium - margin` and the decoder skips its update while either is above
    `equilibrium + margin` (both update when both would skip). A skipped update applies nothing,
    under any strategy (`apply_if`): the variables, Adam's moments and the optimizer's
    `iterations` stay as they are, so `iterations` counts the updates applied. Tracked per step
    (as every term, a per-example value averaged): `discriminator_updated` and `decoder_updated`,
    the fraction of examples whose step applied that update (held-out steps apply none: their
    values say whether the rule would have let the update through on that batch).

    It has no density (`has_density=False`, as `ae` and `adversarial_ae`): the reconstruction
    term is in the discriminator's feature space, so there is no ELBO on log p(x). Evaluation
    reports the pixel reconstruction `reconstruction` (-log p(x|z) under the decoder's
    likelihood, tracked but not trained on) and sample quality; the best epoch is chosen by
    `val_reconstruction`, which compares epochs in one fixed space where the feature term's
    space moves with the discriminator and the adversarial terms do not fall as the model
    improves. `sample(n)` decodes z ~ N(0, I). Serving endpoints are the VAE's (`encode`,
    `decode`, `reconstruct`, `sample`).

    The discriminator: stride-2 convolutions (`discriminator_filters`, kernel
    `discriminator_kernel_size`, leaky ReLU, slope 0.2) then a Dense logit, in float32 whatever
    the precision of the networks; Dis_l is the flattened output of the conv block
    `reconstruction_layer`. It is trained only in the step and is in no serving endpoint, so in no
    export; the three optimizers' states are saved in `.keras` files and step checkpoints.

    Args:
        adversarial_loss_scale: float in [0, 1]. s, the weight of the adversarial term in the
            decoder's loss against (1 - s) on the feature reconstruction. 0.5 is pythae's
            default (pythae asserts the same range).
        reconstruction_layer: int. The conv block whose features are Dis_l, -1 the last (the
            default). pythae's -1 resolves to its discriminator's depth, which for its default
            MLP is the output probability itself; the paper takes a hidden conv layer of its
            discriminator, as here.
        equilibrium: float. The cross-entropy the gating keeps the game near; 0.68 (about
            log 2, chance) is pythae's default.
        margin: float >= 0. The band around `equilibrium` outside which the gating skips an
            update; 0.4 is pythae's default.
        equilibrium_gating: bool. Apply the gating (pythae always does); False updates the three
            networks every step.
        discriminator_filters: list of ints. Channels of the discriminator's stride-2 conv
            layers ([32, 64]: the encoder's).
        discriminator_kernel_size: int. Their kernel size (3: the encoder's).
        decoder_learning_rate: float or None. The decoder's Adam learning rate; None (the
            default) takes the encoder's (`train.learning_rate`), as pythae trains the three at
            one rate by default.
        discriminator_learning_rate: float or None. The discriminator's Adam learning rate; None
            takes the encoder's.
        **kwargs: the arguments of `VAE` (`beta` and the KL schedule weigh the encoder's KL).
    """

    capabilities = Capabilities(has_density=False)
    objective_is_elbo = False
    metric_names = ("reconstruction", "kl", "feature_reconstruction", "encoder_loss",
                    "decoder_loss", "discriminator_loss", "real_bce", "prior_bce",
                    "discriminator_updated", "decoder_updated")

    def __init__(
        self,
        image_shape,
        adversarial_loss_scale=0.5,
        reconstruction_layer=-1,
        equilibrium=0.68,
        margin=0.4,
        equilibrium_gating=True,
        discriminator_filters=(32, 64),
        discriminator_kernel_size=3,
        decoder_learning_rate=None,
        discriminator_learning_rate=None,
        **kwargs,
    ):
        if not 0.0 <= adversarial_loss_scale <= 1.0:
            raise UserInputError(
                f"adversarial_loss_scale must be in [0, 1], got {adversarial_loss_scale}")
        if margin < 0:
            raise UserInputError(f"margin must be >= 0, got {margin}")
        filters = [int(f) for f in discriminator_filters or ()]
        if not filters or min(filters) < 1:
            raise UserInputError("discriminator_filters must be a non-empty list of positive "
                                 f"ints, got {discriminator_filters}")
        if int(discriminator_kernel_size) < 1:
            raise UserInputError(
                f"discriminator_kernel_size must be >= 1, got {discriminator_kernel_size}")
        if not -len(filters) <= int(reconstruction_layer) < len(filters):
            raise UserInputError(
                f"reconstruction_layer must index one of the {len(filters)} conv blocks of "
                f"discriminator_filters (-{len(filters)} to {len(filters) - 1}), got "
                f"{reconstruction_layer}")
        for name, rate in (("decoder_learning_rate", decoder_learning_rate),
                           ("discriminator_learning_rate", discriminator_learning_rate)):
            if rate is not None and not rate > 0:
                raise UserInputError(f"{name} must be > 0 or null, got {rate}")
        super().__init__(image_shape, **kwargs)

        # === Config === (the discriminator is built from it)
        self.adversarial_loss_scale = float(adversarial_loss_scale)
        self.reconstruction_layer = int(reconstruction_layer)
        self.equilibrium = float(equilibrium)
        self.margin = float(margin)
        self.equilibrium_gating = bool(equilibrium_gating)
        self.discriminator_filters = filters
        self.discriminator_kernel_size = int(discriminator_kernel_size)
        self.decoder_learning_rate = (None if decoder_learning_rate is None
                                      else float(decoder_learning_rate))
        self.discriminator_learning_rate = (None if discriminator_learning_rate is None
                                            else float(discriminator_learning_rate))

        # === Layers ===
        self.discriminator = self.build_discriminator()

    def build_discriminator(self):
        """x -> `(Dis_l(x) flattened, logit)`, float32: the conv blocks, then a Dense logit on the
        last block's flattened output."""
        images = keras.Input(self.image_shape)
        h, blocks = images, []
        for i, channels in enumerate(self.discriminator_filters):
            h = keras.layers.Conv2D(channels, self.discriminator_kernel_size, strides=2,
                                    padding="same", activation="leaky_relu", dtype="float32",
                                    name=f"conv_{i}")(h)
            blocks.append(h)
        last = keras.layers.Flatten(dtype="float32", name="flatten")(h)
        layer = self.reconstruction_layer % len(blocks)
        features = (last if layer == len(blocks) - 1 else
                    keras.layers.Flatten(dtype="float32", name="features")(blocks[layer]))
        logit = keras.layers.Dense(1, dtype="float32", name="logit")(last)
        return keras.Model(images, [features, logit], name="discriminator")

    # --- The forward pass and the objective -------------------------------------------------

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)  # z_mean, z_log_var, z, x_params, prior_z
        x = tf.cast(self.as_batch(inputs)["x"], tf.float32)
        reconstruction = tf.cast(self.likelihood.mean(outputs["x_params"]), tf.float32)
        prior_params = self.decoder(outputs["prior_z"], training=training)
        generated = tf.cast(self.likelihood.mean(prior_params), tf.float32)
        # One pass of the discriminator over the three image sets (no batch statistics in it).
        features, logits = self.discriminator(
            tf.concat([x, reconstruction, generated], axis=0), training=training)
        features = tf.split(features, 3, axis=0)
        logits = tf.split(logits[:, 0], 3, axis=0)
        return {**outputs, "real_features": features[0], "reconstruction_features": features[1],
                "real_logits": logits[0], "prior_logits": logits[2]}

    def loss_terms(self, batch, outputs):
        x = tf.cast(batch["x"], outputs["x_params"].dtype)
        reconstruction = -self.likelihood.log_prob(x, outputs["x_params"])
        kl = self.kl_divergence(outputs)
        feature = tf.reduce_sum(
            tf.square(outputs["real_features"] - outputs["reconstruction_features"]), axis=-1)
        # -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
        real_bce = tf.nn.softplus(-outputs["real_logits"])
        prior_bce = tf.nn.softplus(outputs["prior_logits"])
        discriminator = real_bce + prior_bce
        encoder = self.kl_weight() * self.regularizer(kl) + feature
        s = self.adversarial_loss_scale
        decoder = (1.0 - s) * feature - s * discriminator
        update_discriminator, update_decoder = self.gates(real_bce, prior_bce)
        ones = tf.ones_like(real_bce)
        return {
            "loss": encoder + decoder + discriminator,
            "reconstruction": reconstruction,
            "kl": kl,
            "feature_reconstruction": feature,
            "encoder_loss": encoder,
            "decoder_loss": decoder,
            "discriminator_loss": discriminator,
            "real_bce": real_bce,
            "prior_bce": prior_bce,
            "discriminator_updated": ones * tf.cast(update_discriminator, ones.dtype),
            "decoder_updated": ones * tf.cast(update_decoder, ones.dtype),
        }

    def gates(self, real_bce, prior_bce):
        """`(update_discriminator, update_decoder)` of this step, from the global-batch means of
        the two cross-entropies (`equilibrium_gates`); both True without gating."""
        if not self.equilibrium_gating:
            return tf.constant(True), tf.constant(True)
        return equilibrium_gates(global_mean(real_bce), global_mean(prior_bce),
                                 self.equilibrium, self.margin)

    def selection_metric(self, stage=0):
        """The pixel reconstruction, as `ae`'s and `adversarial_ae`'s (see the class
        docstring)."""
        return "val_reconstruction", "min"

    def schedule_values(self):
        return {**super().schedule_values(),
                "adversarial_loss_scale": self.adversarial_loss_scale}

    # --- The three optimizers and the step --------------------------------------------------

    def make_optimizers(self, learning_rate):
        def adam(rate):
            return keras.optimizers.Adam(learning_rate if rate is None else rate)

        return {"optimizer": adam(None),
                "decoder_optimizer": adam(self.decoder_learning_rate),
                "discriminator_optimizer": adam(self.discriminator_learning_rate)}

    def optimizer_variables(self):
        """The encoder's variables, the discriminator's, and the rest (the decoder's and a
        learned likelihood scale) for the decoder's optimizer; in `trainable_variables` order."""
        encoder = {id(v) for v in self.encoder.trainable_variables}
        discriminator = {id(v) for v in self.discriminator.trainable_variables}
        variables = self.trainable_variables
        return {
            "optimizer": [v for v in variables if id(v) in encoder],
            "decoder_optimizer": [v for v in variables
                                  if id(v) not in encoder and id(v) not in discriminator],
            "discriminator_optimizer": [v for v in variables if id(v) in discriminator],
        }

    def compile(self, optimizer="rmsprop", **kwargs):
        """Keras' `compile` with the three optimizers, each then built on its own variables:
        their states must exist before the first step, since a gated update may not create
        variables inside its condition."""
        super().compile(optimizer=optimizer, **kwargs)
        self.build_optimizers()

    def train_step(self, data):
        batch = self.as_batch(data)
        self.build_optimizers()  # nothing when compiled (`compile`), as it should be
        with tf.GradientTape(persistent=True) as tape:
            outputs = self(batch, training=True)
            terms = self.loss_terms(batch, outputs)
            losses = {"optimizer": terms["encoder_loss"],
                      "decoder_optimizer": terms["decoder_loss"],
                      "discriminator_optimizer": terms["discriminator_loss"]}
            scaled = {name: getattr(self, name).scale_loss(self.average_loss(loss))
                      for name, loss in losses.items()}
        for name in self.tracked_terms():
            self.term_trackers[name].update_state(terms[name])
        update_discriminator, update_decoder = self.gates(terms["real_bce"], terms["prior_bce"])
        gates = {"optimizer": None, "decoder_optimizer": update_decoder,
                 "discriminator_optimizer": update_discriminator}
        # Every gradient at the same weights, then each optimizer updates its own variables.
        updates = []
        for name, variables in self.optimizer_variables().items():
            gradients = [tf.zeros(v.shape, v.dtype) if g is None else g
                         for g, v in zip(tape.gradient(scaled[name], variables), variables)]
            updates.append((getattr(self, name), gradients, variables, gates[name]))
        del tape
        for optimizer, gradients, variables, gate in updates:
            if gate is None or not self.equilibrium_gating:
                optimizer.apply(gradients, variables)
            else:
                apply_if(optimizer, gradients, variables, gate)
        self.steps_trained.assign_add(1)
        return self.get_metrics_result()

    def get_config(self):
        return {
            **super().get_config(),
            "adversarial_loss_scale": self.adversarial_loss_scale,
            "reconstruction_layer": self.reconstruction_layer,
            "equilibrium": self.equilibrium,
            "margin": self.margin,
            "equilibrium_gating": self.equilibrium_gating,
            "discriminator_filters": self.discriminator_filters,
            "discriminator_kernel_size": self.discriminator_kernel_size,
            "decoder_learning_rate": self.decoder_learning_rate,
            "discriminator_learning_rate": self.discriminator_learning_rate,
        }
