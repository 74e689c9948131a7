import keras
import tensorflow as tf

from vae_zoo.distributions import standard_normal_draws
from vae_zoo.errors import UserInputError
from vae_zoo.layers import get_likelihood
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import ZooModel
from vae_zoo.models.base import register_model
from vae_zoo.models.image_networks import ImageNetworks
from vae_zoo.networks import build_decoder
from vae_zoo.networks import build_encoder


@register_model
class AE(ImageNetworks, ZooModel):
    """Deterministic autoencoder: z = E(x), trained on the reconstruction alone.

    Per example, in nats: `loss = -log p(x|D(E(x)))`, the log-likelihood summed over pixels and
    channels (the Bernoulli cross-entropy on MNIST, as every zoo model reports it). The encoder
    is the VAE's network with a linear float32 code head in place of the Gaussian one; the
    decoder is the VAE's. The regularised variants (`RAE`, the MMD family's `WAE`) add their
    penalties to `loss_terms`.

    It has no density (`has_density=False`): no ELBO and no IW NLL. Evaluation reports the
    reconstruction (nats and MSE) and the code statistics. `sample(n)` decodes z ~ N(0, I), as
    pythae's default sampler does: an unregularised code need not fill that region, so these
    samples are poor by design (ex-post samplers fitted to the codes are issue #24).

    Calling the model returns a dict with `z` (the code) and `x_params` (the decoder's logits or
    means).

    Serving endpoints: `reconstruct`/`serving_default` (x -> reconstruction), `encode` (x -> z),
    `decode` (z -> x_mean), `sample` (n -> x_mean of z ~ N(0, I)).

    Args:
        image_shape: tuple of ints. Shape of one input, e.g. `(28, 28, 1)`.
        latent_dim: int. Size of z.
        network: str. Encoder/decoder family: `"dense"` or `"conv"`.
        filters: list of ints. Channels of the stride-2 conv layers (conv network only).
        hidden_units: list of ints. Dense layers between the image features and the code.
        kernel_size: int. Conv kernel size (conv network only).
        likelihood: str. p(x|z): `"bernoulli"` (logits) or `"gaussian"` (N(f(z), sigma^2 I):
            the squared error of Ghosh et al. and Tolstikhin et al., scaled by 1 / (2 sigma^2)).
        sigma: float. Gaussian likelihood scale (or its initial value when `learn_sigma`).
        learn_sigma: bool. Learn the Gaussian scale.
        dtype: Keras dtype policy of the hidden layers; the code, p(x|z) and the loss stay
            float32.
    """

    capabilities = Capabilities(has_density=False)
    metric_names = ("reconstruction",)
    deterministic_endpoints = ("serving_default", "reconstruct", "decode", "encode")

    def __init__(
        self,
        image_shape,
        latent_dim=16,
        network="conv",
        filters=None,
        hidden_units=None,
        kernel_size=None,
        likelihood="bernoulli",
        sigma=1.0,
        learn_sigma=False,
        **kwargs,
    ):
        if int(latent_dim) < 1:
            raise UserInputError(f"latent_dim must be a positive integer, got {latent_dim}")
        super().__init__(image_shape, **kwargs)

        # === Config === (the layers are built from it)
        self.keep_network_config(latent_dim, network, filters, hidden_units, kernel_size,
                                 likelihood, sigma, learn_sigma)

        # === Layers ===
        features = build_encoder(network, image_shape, dtype=self.dtype_policy,
                                 **self.network_args())
        code = keras.layers.Dense(self.latent_dim, dtype="float32", name="code")(features.output)
        self.encoder = keras.Model(features.input, code, name="encoder")
        self.decoder = build_decoder(network, image_shape, self.latent_dim,
                                     dtype=self.dtype_policy, **self.network_args())
        self.likelihood = get_likelihood(likelihood, sigma=sigma, learn_sigma=learn_sigma)
        self.built = True

    def call(self, inputs, training=None):
        z = self.encoder(self.as_batch(inputs)["x"], training=training)
        return {"z": z, "x_params": self.decoder(z, training=training)}

    # --- The objective ----------------------------------------------------------------------

    def loss_terms(self, batch, outputs):
        x = tf.cast(batch["x"], tf.float32)
        reconstruction = -self.likelihood.log_prob(x, outputs["x_params"])
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def selection_metric(self, stage=0):
        """The reconstruction: the AE's whole objective. The regularised variants pick by it too:
        their penalties shape the code for sampling, not the images, and an MMD against fresh
        prior draws is noisy on held-out batches."""
        return "val_reconstruction", "min"

    # --- The interface ----------------------------------------------------------------------

    def representation(self, x):
        return self.encoder(x, training=False)

    def decode(self, z):
        return self.likelihood.mean(self.decoder(z, training=False))

    def sample(self, n, seed=None):
        return self.decode(standard_normal_draws(n, self.latent_dim, seed))

    # --- Serving ----------------------------------------------------------------------------

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()

        def encode(x):
            return {"z": self.representation(x)}

        return {**endpoints, "encode": (encode, endpoints["reconstruct"][1])}

    def tflite_exclusions(self, quantize):
        if quantize not in ("dynamic", "int8"):
            return {}
        return {"encode": "the codes are unbounded (sd about 3 on MNIST), and the tolerances are "
                          "absolute, for pixels in [0, 1]: 8-bit weights gave a mean code error of "
                          "0.013 (0.4% of the codes' spread) against the 0.01 allowed; the "
                          "images of reconstruct and decode convert"}

    def get_config(self):
        return {**super().get_config(), **self.network_config()}
