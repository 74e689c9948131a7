import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.models.ae.ae import AE
from vae_zoo.models.base import register_model

DECODER_PENALTIES = ("l2", "gp")


@register_model
class RAE(AE):
    """Regularised deterministic autoencoder (Ghosh et al., 2020, "From variational to
    deterministic autoencoders"): the AE plus a code norm penalty and a smoothness penalty on
    the decoder, per example

        loss = -log p(x|D(z)) + code_weight * ||z||^2 / 2 + decoder_weight * R,   z = E(x)

    with R, by `decoder_penalty`:

    - `"l2"` (RAE-L2): ||theta_D||^2, the squared L2 norm of every trainable weight of the
      decoder: the same for every example, so its gradient is weight decay
      2 * decoder_weight * theta_D on the decoder alone.
    - `"gp"` (RAE-GP): ||grad_z ||D(z)||^2||^2, the squared gradient with respect to the code
      of the squared norm of the decoded image D(z) (the mean of p(x|z)), as the authors' code
      computes it (`grad_pen_loss` in their models/rae/loss_functions.py). pythae's RAE_GP
      differentiates the reconstruction with respect to the input x instead, through the encoder
      too. The gradient is taken inside the training step's tape (double backpropagation), so
      a step costs about two decoder passes more than the AE's.

    The paper's other term, the ex-post density estimate of the codes that RAEs sample from, is
    issue #24's sampler; `sample(n)` decodes z ~ N(0, I) meanwhile.

    The defaults are the authors' MNIST settings (configurations/config.py: embedding weight
    1e-4, L2 weight 1e-7, GP weight 0.5e-7) moved from their per-pixel and per-dimension means to
    the zoo's per-image sums (784 pixels, 16 latent dimensions): code_weight = 2 * 1e-4 * 784 /
    16 = 0.0098; decoder_weight = 1e-7 * 784 = 7.84e-5 (l2) or 0.5e-7 * 784 / 16 = 2.45e-6 (gp).
    The authors' reconstruction is the squared error; the zoo's Bernoulli cross-entropy is
    larger, so the penalties weigh relatively less here.

    Tracked besides the loss, per example: `reconstruction`, `code_penalty` (||z||^2 / 2) and
    `decoder_penalty` (R, unweighted).

    Args:
        decoder_penalty: str. `"l2"` or `"gp"`.
        code_weight: float. beta of the paper, the weight on ||z||^2 / 2.
        decoder_weight: float or None. lambda of the paper, the weight on R; None takes the
            default of `decoder_penalty` above.
        **kwargs: the arguments of `AE`.
    """

    metric_names = ("reconstruction", "code_penalty", "decoder_penalty")
    default_decoder_weights = {"l2": 7.84e-5, "gp": 2.45e-6}

    def __init__(self, image_shape, decoder_penalty="l2", code_weight=0.0098,
                 decoder_weight=None, **kwargs):
        if decoder_penalty not in DECODER_PENALTIES:
            raise UserInputError(f"unknown decoder_penalty {decoder_penalty!r}; choose one of "
                                 f"{', '.join(DECODER_PENALTIES)}")
        if code_weight < 0 or (decoder_weight is not None and decoder_weight < 0):
            raise UserInputError("code_weight and decoder_weight must be >= 0")
        super().__init__(image_shape, **kwargs)

        # === Config ===
        self.decoder_penalty = decoder_penalty
        self.code_weight = float(code_weight)
        self.decoder_weight = (self.default_decoder_weights[decoder_penalty]
                               if decoder_weight is None else float(decoder_weight))

    def call(self, inputs, training=None):
        if self.decoder_penalty != "gp":
            return super().call(inputs, training)
        z = self.encoder(self.as_batch(inputs)["x"], training=training)
        with tf.GradientTape() as tape:
            tape.watch(z)
            x_params = self.decoder(z, training=training)
            # Summed over the batch: each example's image depends on its own code only, so the
            # gradient's row i is that of example i's ||D(z_i)||^2.
            energy = tf.reduce_sum(tf.square(self.likelihood.mean(x_params)))
        gradient = tape.gradient(energy, z)
        return {"z": z, "x_params": x_params,
                "decoder_gradient_norm": tf.reduce_sum(tf.square(gradient), axis=1)}

    def loss_terms(self, batch, outputs):
        terms = super().loss_terms(batch, outputs)
        code = 0.5 * tf.reduce_sum(tf.square(outputs["z"]), axis=1)
        if self.decoder_penalty == "gp":
            decoder = outputs["decoder_gradient_norm"]
        else:
            squares = tf.add_n([tf.reduce_sum(tf.square(w)) for w in self.decoder.trainable_weights])
            decoder = tf.fill(tf.shape(code), squares)
        loss = terms["loss"] + self.code_weight * code + self.decoder_weight * decoder
        return {**terms, "loss": loss, "code_penalty": code, "decoder_penalty": decoder}

    def schedule_values(self):
        return {"code_weight": self.code_weight, "decoder_weight": self.decoder_weight}

    def get_config(self):
        return {**super().get_config(), "decoder_penalty": self.decoder_penalty,
                "code_weight": self.code_weight, "decoder_weight": self.decoder_weight}
