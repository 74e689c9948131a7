import keras
import numpy as np
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.layers import VectorQuantizer
from vae_zoo.layers import get_likelihood
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import ZooModel
from vae_zoo.models.base import register_model
from vae_zoo.networks.conv import build_conv_grid_decoder
from vae_zoo.networks.conv import build_conv_grid_encoder
from vae_zoo.networks.conv import grid_shape
from vae_zoo.networks.pixelcnn import build_pixelcnn


@register_model
class VQVAE(ZooModel):
    """VQ-VAE (van den Oord, Vinyals & Kavukcuoglu, 2017) with a PixelCNN prior over its codes.

    The encoder maps x to a grid of D-vectors z_e; each is replaced by its nearest of K codebook
    vectors e (`VectorQuantizer`), and the decoder maps the quantised grid z_q to p(x|z_q).
    Training has two stages (`capabilities.stages == 2`), run one after the other by `train.py`:

    1. the autoencoder, per example, summed over the grid's positions and dimensions:

           loss = -log p(x|z_q) + ||sg[z_e] - e||^2 + commitment * ||z_e - sg[e]||^2

       sg = stop-gradient; the decoder's gradient reaches the encoder straight through the
       quantiser (z_q = z_e + sg[e - z_e]). With `ema_decay` the codebook term is dropped and
       the codebook follows moving averages of its assigned vectors instead (appendix A.1).
    2. the prior, with the autoencoder frozen: a PixelCNN p(c) = prod_i p(c_i | c_<i) over the
       grid of integer codes c of the training images, per example `loss = -log p(c)` (nats).

    It has no density on x (`has_density=False`): no ELBO and no IW NLL. It reports instead the
    reconstruction error per image in its likelihood (`reconstruction`: the Bernoulli NLL, or
    the Gaussian's), the quantisation distance ||z_e - e||^2 (`quantization`), the prior's
    -log p(c) (`prior_nll`), and codebook usage: the perplexity of the codes on the test set and
    the count of dead codes (`vae_zoo/evaluation/codebook.py`).

    `representation(x)` is the quantised grid z_q, flattened; `decode(z)` decodes such a grid;
    `codes(x)` gives the integer codes and `decode_codes(c)` decodes them. `sample(n)` draws
    codes from the PixelCNN position by position (a `tf.while_loop` of categorical draws by the
    Gumbel-max trick with `tf.random.uniform`, which TFLite runs), then decodes them.

    Serving endpoints: `reconstruct`/`serving_default` (x -> reconstruction), `encode` (x ->
    int32 codes `(h, w)`), `decode` (codes -> x_mean), `sample` (n -> x_mean).

    Args:
        image_shape: tuple of ints. Shape of one input.
        num_codes: int. K, the codebook size.
        code_dim: int. D, the size of each code vector.
        filters: list of ints. Channels of the stride-2 conv layers: the grid is the image
            downsampled 2**len(filters) times (7x7 for 28x28 and two layers).
        kernel_size: int. Conv kernel size.
        likelihood: str. p(x|z_q): `"bernoulli"` (logits) or `"gaussian"` (N(f(z_q), sigma^2 I)).
        sigma: float. Gaussian likelihood scale.
        commitment: float. beta, the weight on the commitment term (0.25 in the paper).
        ema_decay: float or None. EMA codebook updates with this decay (0.99 in the paper);
            None trains the codebook with the codebook loss.
        dead_code_threshold: float. With EMA, a code chosen by fewer than this many vectors per
            batch (its EMA count) restarts at a vector of the batch; 0 never restarts.
        prior_filters: int. Channels of the PixelCNN.
        prior_layers: int. Residual masked layers of the PixelCNN.
        dtype: Keras dtype policy of the hidden layers; the quantiser, p(x|z) and the logits
            of the prior are float32.
    """

    capabilities = Capabilities(has_density=False, stages=2, discrete_codes=True)
    metric_names = ("reconstruction", "quantization")
    stage_names = ("autoencoder", "prior")
    stage_metric_names = {1: ("prior_nll",)}
    deterministic_endpoints = ("serving_default", "reconstruct", "decode", "encode")

    def __init__(
        self,
        image_shape,
        num_codes=64,
        code_dim=16,
        filters=(32, 64),
        kernel_size=3,
        likelihood="bernoulli",
        sigma=1.0,
        commitment=0.25,
        ema_decay=0.99,
        dead_code_threshold=0.5,
        prior_filters=64,
        prior_layers=2,
        **kwargs,
    ):
        if int(num_codes) < 2:
            raise UserInputError(f"num_codes must be at least 2, got {num_codes}")
        if int(code_dim) < 1:
            raise UserInputError(f"code_dim must be a positive integer, got {code_dim}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise UserInputError(f"ema_decay must be in (0, 1), or null for the codebook loss; "
                                 f"got {ema_decay}")
        if commitment < 0:
            raise UserInputError(f"commitment must be >= 0, got {commitment}")
        super().__init__(image_shape, **kwargs)

        # === Layers ===
        filters = tuple(filters)
        self.encoder = build_conv_grid_encoder(image_shape, int(code_dim), filters, kernel_size,
                                               dtype=self.dtype_policy)
        self.quantizer = VectorQuantizer(num_codes, code_dim, ema_decay,
                                         dead_code_threshold=dead_code_threshold,
                                         dtype="float32", name="quantizer")
        self.decoder = build_conv_grid_decoder(image_shape, int(code_dim), filters, kernel_size,
                                               dtype=self.dtype_policy)
        self.likelihood = get_likelihood(likelihood, sigma=sigma)
        self.grid_shape = grid_shape(self.image_shape, filters)
        self.prior_network = build_pixelcnn(self.grid_shape, int(num_codes), prior_filters,
                                            prior_layers, dtype=self.dtype_policy)

        # === Config ===
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.filters = list(filters)
        self.kernel_size = kernel_size
        self.likelihood_name = likelihood
        self.sigma = sigma
        self.commitment = float(commitment)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.dead_code_threshold = float(dead_code_threshold)
        self.prior_filters = int(prior_filters)
        self.prior_layers = int(prior_layers)
        self.latent_dim = int(np.prod(self.grid_shape)) * self.code_dim
        self.built = True

    def call(self, inputs, training=None):
        """Stage 0: `z_e`, `codes`, `quantized`, `x_params`; stage 1: `codes`, `prior_logits`.

        The codebook's EMA moves only in stage 0's training steps.
        """
        x = self.as_batch(inputs)["x"]
        z_e = tf.cast(self.encoder(x, training=training and self.stage == 0), tf.float32)
        codes, quantized = self.quantizer(z_e, training=training and self.stage == 0)
        if self.stage == 1:
            return {"codes": codes, "prior_logits": self.prior_logits(codes, training)}
        x_params = self.decoder(self.quantizer.straight_through(z_e, quantized),
                                training=training)
        return {"z_e": z_e, "codes": codes, "quantized": quantized, "x_params": x_params}

    # --- The objective ----------------------------------------------------------------------

    def loss_terms(self, batch, outputs):
        if self.stage == 1:
            prior_nll = self.code_nll(outputs["codes"], outputs["prior_logits"])
            return {"loss": prior_nll, "prior_nll": prior_nll}
        x = tf.cast(batch["x"], tf.float32)
        z_e, quantized = outputs["z_e"], outputs["quantized"]
        reconstruction = -self.likelihood.log_prob(x, outputs["x_params"])
        commitment = _sum_per_example((z_e - tf.stop_gradient(quantized)) ** 2)
        loss = reconstruction + self.commitment * commitment
        if self.ema_decay is None:
            loss += _sum_per_example((tf.stop_gradient(z_e) - quantized) ** 2)
        return {"loss": loss, "reconstruction": reconstruction, "quantization": commitment}

    def prior_logits(self, codes, training=False):
        """The PixelCNN's logits of p(c_i | c_<i) at every position, `(batch, h, w, K)`."""
        one_hot = tf.one_hot(tf.stop_gradient(codes), self.num_codes)
        return self.prior_network(one_hot, training=training)

    @staticmethod
    def code_nll(codes, logits):
        """-log p(c) per example: the cross-entropies summed over the grid (nats)."""
        return _sum_per_example(tf.nn.sparse_softmax_cross_entropy_with_logits(codes, logits))

    # --- The interface ----------------------------------------------------------------------

    def codes(self, x):
        """The integer codes of `x`, int32 `(batch, h, w)`."""
        return self.quantizer(self.encoder(x, training=False))[0]

    def representation(self, x):
        return tf.reshape(self.quantizer(self.encoder(x, training=False))[1],
                          [-1, self.latent_dim])

    def decode(self, z):
        grid = tf.reshape(tf.cast(z, tf.float32), [-1, *self.grid_shape, self.code_dim])
        return self.likelihood.mean(self.decoder(grid, training=False))

    def decode_codes(self, codes):
        return self.decode(self.quantizer.lookup(codes))

    def sample(self, n, seed=None):
        return self.decode_codes(self.sample_codes(n, seed))

    def sample_codes(self, n, seed=None):
        """`n` code grids drawn from the PixelCNN, one position at a time in raster order.

        Called eagerly (pictures, scripts) it runs as one traced graph: an eager loop of
        49 PixelCNN calls is several times slower.
        """
        if not tf.executing_eagerly():
            return self._draw_codes(n, seed)
        if getattr(self, "_compiled_draw_codes", None) is None:
            self._compiled_draw_codes = tf.function(self._draw_codes, reduce_retracing=True)
        return self._compiled_draw_codes(tf.constant(n, tf.int32), seed)

    def _draw_codes(self, n, seed=None):
        height, width = self.grid_shape
        positions, num_codes = height * width, self.num_codes

        def draw(i, grid):
            logits = tf.reshape(self.prior_network(grid, training=False), [n, positions, -1])
            logits = tf.gather(logits, i, axis=1)  # (n, K): p(c_i | c_<i)
            if seed is None:
                u = tf.random.uniform([n, num_codes], minval=1e-7, maxval=1.0)
            else:
                u = tf.random.stateless_uniform([n, num_codes], seed=tf.stack([int(seed), i]),
                                                minval=1e-7, maxval=1.0)
            code = tf.argmax(logits - tf.math.log(-tf.math.log(u)), axis=-1)  # Gumbel-max
            at_i = tf.reshape(tf.one_hot(i, positions), [1, height, width, 1])
            return i + 1, grid + at_i * tf.one_hot(code, num_codes)[:, None, None, :]

        grid = tf.zeros([n, height, width, num_codes])
        _, grid = tf.while_loop(lambda i, _: i < positions, draw, (tf.constant(0), grid))
        return tf.argmax(grid, axis=-1, output_type=tf.int32)

    @property
    def continuous_observations(self):
        return self.likelihood_name == "gaussian"

    # --- Serving ----------------------------------------------------------------------------

    def codes_spec(self):
        return tf.TensorSpec([None, *self.grid_shape], tf.int32, name="codes")

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()
        x_signature = endpoints["reconstruct"][1]

        def encode(x):
            return {"codes": self.codes(x)}

        def decode(codes):
            return {"x_mean": self.decode_codes(codes)}

        return {**endpoints, "encode": (encode, x_signature),
                "decode": (decode, [self.codes_spec()])}

    def tflite_exclusions(self, quantize):
        if quantize != "int8":
            return {}
        reason = ("8-bit activations move the encoder's vectors across code boundaries (63% of "
                  "the codes changed on the trained model); decode, from given codes, converts")
        return dict.fromkeys(("encode", "reconstruct", "serving_default"), reason)

    def example_input(self, input_name, images):
        if input_name == "codes":
            return keras.ops.convert_to_numpy(self.codes(images))
        return super().example_input(input_name, images)

    def selection_metric(self, stage=0):
        """Reconstruction for the autoencoder (it has no density, and its codebook terms say
        nothing of the images); the prior's -log p(codes), its loss, for the prior."""
        return ("val_reconstruction", "min") if stage == 0 else ("val_loss", "min")

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": list(self.image_shape),
            "num_codes": self.num_codes,
            "code_dim": self.code_dim,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "likelihood": self.likelihood_name,
            "sigma": self.sigma,
            "commitment": self.commitment,
            "ema_decay": self.ema_decay,
            "dead_code_threshold": self.dead_code_threshold,
            "prior_filters": self.prior_filters,
            "prior_layers": self.prior_layers,
        }


def _sum_per_example(values):
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
