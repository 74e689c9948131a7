import keras
import tensorflow as tf

from vae_zoo.distributions import diagonal_gaussian
from vae_zoo.errors import UserInputError
from vae_zoo.layers import DiagonalGaussianHead
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import register_model
from vae_zoo.models.vae import VAE
from vae_zoo.networks import build_decoder
from vae_zoo.networks import build_encoder


@register_model
class CVAE(VAE):
    """Conditional VAE (Sohn, Lee & Yan, 2015, "Learning Structured Output Representation using
    Deep Conditional Generative Models"): the VAE's model with a class label y as a condition.

    The generative model is p(x, z | y) = p(x|z, y) p(z), p(z) = N(0, I) independent of y, and the
    recognition model q(z|x, y) a diagonal Gaussian. Per example the loss is the negative
    conditional ELBO (Sohn et al., eq. 4, with the prior network p(z|y) = N(0, I)), in nats:

        loss = -log p(x|z, y) + w(t) * beta * KL(q(z|x, y) || N(0, I)),   z ~ q(z|x, y) once,

    the log-likelihood summed over pixels, the KL in closed form over latent dimensions, the batch
    loss the mean over the global batch; beta and the KL schedule w(t) are the VAE's.

    Conditioning: a one-hot of y (`tf.one_hot`, a TFLite builtin) is concatenated to the encoder's
    features before the posterior head, and to z at the decoder's input.

    Labels: batches must carry `y` (int in [0, num_classes)); a batch without one is an error.
    The methods take `labels`; called without them (shared evaluation code passes x alone) they
    answer for the label-marginal model with the uniform p(y) = 1/K, and say so:
    - `decode(z)`: E[x|z] = 1/K sum_y E[x|z, y] (exact, since z and y are independent a priori);
    - `posterior(x)`: the mixture 1/K sum_y q(z|x, y), and `representation(x)` its mean;
    - `log_importance_weights(x, k)`: y_k ~ p(y) drawn with each z_k ~ q(z|x, y_k), so the
      k-sample bound is on log p(x) = log 1/K sum_y p(x|y) (with labels: on log p(x|y));
    - `sample(n)`: labels 0, 1, ..., K-1, 0, 1, ... (`sample(n, labels=...)` to choose).

    Serving endpoints take the label `y` (int32, one per row) wherever the model conditions:
    `reconstruct`/`serving_default` (x, y -> reconstruction), `encode` (x, y -> z_mean,
    z_log_var, z), `decode` (z, y -> x_mean) and `sample` (y -> x_mean: one image per label,
    n = len(y)).

    Args:
        image_shape: tuple of ints. Shape of one input.
        num_classes: int. K, the number of labels; from the dataset, never from a config.
        **kwargs: the arguments of `VAE`.
    """

    capabilities = Capabilities(conditional=True)
    data_arguments = ("image_shape", "num_classes")

    def __init__(self, image_shape, num_classes=None, **kwargs):
        if not num_classes or int(num_classes) < 2:
            raise UserInputError(
                "cvae conditions on class labels, but the dataset has none (num_classes="
                f"{num_classes}): use a labelled dataset (mnist, fashion_mnist, a .npz with y)")
        self._build_classes = int(num_classes)  # read by build_networks during super().__init__
        super().__init__(image_shape, **kwargs)

        # === Config ===
        self.num_classes = int(num_classes)

    def build_networks(self, network, image_shape, latent_dim, network_args):
        classes = self._build_classes
        features = build_encoder(network, image_shape, dtype=self.dtype_policy, **network_args)
        x_in = keras.Input(image_shape, name="x")
        y_in = keras.Input((classes,), name="y_one_hot")
        joined = keras.layers.Concatenate(dtype=self.dtype_policy, name="features_and_label")(
            [features(x_in), y_in])
        head = DiagonalGaussianHead(latent_dim, dtype="float32", name="posterior")
        encoder = keras.Model([x_in, y_in], head(joined), name="encoder")
        decoder = build_decoder(network, image_shape, latent_dim + classes,
                                dtype=self.dtype_policy, **network_args)
        return encoder, decoder

    # --- Labels -----------------------------------------------------------------------------

    def one_hot(self, labels):
        return tf.one_hot(tf.cast(labels, tf.int32), self.num_classes, dtype=tf.float32)

    def cycling_labels(self, n):
        """0, 1, ..., K-1, 0, 1, ...: `n` int32 labels."""
        return tf.math.floormod(tf.range(n, dtype=tf.int32), self.num_classes)

    def labels_of(self, batch):
        if "y" not in batch or batch["y"] is None:
            raise UserInputError(
                "cvae needs a label y in every batch: its dataset must have class labels")
        return batch["y"]

    def _decode_params(self, z, one_hot, training=False):
        return self.decoder(tf.concat([z, tf.cast(one_hot, z.dtype)], axis=-1), training=training)

    def _every_label(self, batch):
        """`(K * batch,)` labels 0 (batch times), 1 (batch times), ...; rows of x tile to match."""
        return tf.repeat(tf.range(self.num_classes, dtype=tf.int32), batch)

    def _tile(self, t):
        return tf.tile(t, [self.num_classes] + [1] * (len(t.shape) - 1))

    # --- The objective ----------------------------------------------------------------------

    def call(self, inputs, training=None):
        batch = self.as_batch(inputs)
        x, one_hot = batch["x"], self.one_hot(self.labels_of(batch))
        z_mean, z_log_var = self.encoder([x, one_hot], training=training)
        z = self.sampling((z_mean, z_log_var), seed=self.noise_seed() if training else None)
        x_params = self._decode_params(z, one_hot, training=training)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "z": z, "x_params": x_params}

    # loss_terms, kl_divergence, regularizer, kl_weight: the VAE's, on q(z|x, y) and p(x|z, y).

    # --- The probability interface ----------------------------------------------------------

    def _encode(self, x, labels):
        x = tf.convert_to_tensor(x, tf.float32)
        return self.encoder([x, self.one_hot(labels)], training=False)

    def posterior(self, x, labels=None):
        """q(z|x, y); without labels the equal-weight mixture over y of q(z|x, y)."""
        if labels is not None:
            return diagonal_gaussian(*self._encode(x, labels))
        means, log_vars = self._all_label_posteriors(x)  # (K, batch, latent)
        perm = [1, 0, 2]
        return _mixture_per_example(tf.transpose(means, perm), tf.transpose(log_vars, perm))

    def _all_label_posteriors(self, x):
        x = tf.convert_to_tensor(x, tf.float32)
        batch = tf.shape(x)[0]
        means, log_vars = self._encode(self._tile(x), self._every_label(batch))
        shape = [self.num_classes, batch, self.latent_dim]
        return tf.reshape(means, shape), tf.reshape(log_vars, shape)

    def representation(self, x, labels=None):
        """The mean of q(z|x, y); without labels the mean of the label mixture."""
        if labels is not None:
            return self._encode(x, labels)[0]
        return tf.reduce_mean(self._all_label_posteriors(x)[0], axis=0)

    def decode(self, z, labels=None):
        """E[x|z, y]; without labels E[x|z] = 1/K sum_y E[x|z, y]."""
        z = tf.convert_to_tensor(z, tf.float32)
        if labels is not None:
            return self.likelihood.mean(self._decode_params(z, self.one_hot(labels)))
        batch = tf.shape(z)[0]
        means = self.likelihood.mean(
            self._decode_params(self._tile(z), self.one_hot(self._every_label(batch))))
        return tf.reduce_mean(
            tf.reshape(means, tf.concat([[self.num_classes, batch], tf.shape(means)[1:]], 0)), 0)

    def reconstruct(self, x, labels=None):
        return self.decode(self.representation(x, labels), labels)

    def sample(self, n, seed=None, labels=None):
        """`n` images, image i of label `labels[i]` (default: 0, 1, ..., K-1, 0, ...)."""
        labels = self.cycling_labels(n) if labels is None else labels
        return self.decode(self.sample_latents(n, seed), labels)

    def family_pictures(self, per_class=10, seed=0):
        """`samples_by_class`: one row per label, `per_class` draws of z each."""
        labels = tf.repeat(tf.range(self.num_classes), per_class)
        images = self.sample(self.num_classes * per_class, seed=seed, labels=labels)
        return {"samples_by_class": (keras.ops.convert_to_numpy(images), per_class)}

    def log_importance_weights(self, x, num_samples, labels=None):
        """`(k, batch)` log p(x|z_k, y) + log p(z_k) - log q(z_k|x, y); without labels each
        draw also draws y_k ~ p(y) = 1/K (which cancels in the weight), a bound on log p(x)."""
        x = tf.convert_to_tensor(x, tf.float32)
        k, batch = num_samples, tf.shape(x)[0]
        if labels is None:
            labels = tf.random.uniform([k, batch], maxval=self.num_classes, dtype=tf.int32)
        else:
            labels = tf.broadcast_to(tf.cast(labels, tf.int32)[None], [k, batch])
        flat_labels = tf.reshape(labels, [-1])
        x_tiled = tf.reshape(tf.tile(x[None], [k] + [1] * len(x.shape)),
                             tf.concat([[-1], tf.shape(x)[1:]], 0))
        one_hot = self.one_hot(flat_labels)
        z_mean, z_log_var = self.encoder([x_tiled, one_hot], training=False)
        z = self.sampling((z_mean, z_log_var))
        log_ratio = self.prior().log_prob(z) - diagonal_gaussian(z_mean, z_log_var).log_prob(z)
        log_px = self.likelihood.log_prob(x_tiled, self._decode_params(z, one_hot))
        return tf.reshape(log_px + log_ratio, [k, batch])

    # --- Serving ----------------------------------------------------------------------------

    def serving_endpoints(self):
        x_spec = tf.TensorSpec([None, *self.image_shape], tf.float32, name="x")
        y_spec = tf.TensorSpec([None], tf.int32, name="y")

        def reconstruct(x, y):
            return {"reconstruction": self.reconstruct(x, y)}

        def encode(x, y):
            z_mean, z_log_var = self._encode(x, y)
            return {"z_mean": z_mean, "z_log_var": z_log_var,
                    "z": self.sampling((z_mean, z_log_var))}

        def decode(z, y):
            return {"x_mean": self.decode(z, y)}

        def sample(y):
            return {"x_mean": self.sample(tf.shape(y)[0], labels=y)}

        return {
            "serving_default": (reconstruct, [x_spec, y_spec]),
            "reconstruct": (reconstruct, [x_spec, y_spec]),
            "encode": (encode, [x_spec, y_spec]),
            "decode": (decode, [self.latent_spec(), y_spec]),
            "sample": (sample, [y_spec]),
        }

    def example_input(self, input_name, images):
        """Adds `y`: labels 0, 1, ..., K-1, 0, ... for the images (the export checks compare
        outputs for given inputs, so any valid labels do); `z` is the code of images and labels."""
        if input_name not in ("y", "z"):
            return super().example_input(input_name, images)
        y = keras.ops.convert_to_numpy(self.cycling_labels(len(images))).astype("int32")
        if input_name == "y":
            return y
        return keras.ops.convert_to_numpy(self.representation(images, y))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def _mixture_per_example(means, log_vars):
    """Per example, the equal-weight mixture of its K Gaussians: means `(batch, K, latent)`."""
    from vae_zoo.distributions import tfd

    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=tf.zeros(tf.shape(means)[:2], means.dtype)),
        components_distribution=diagonal_gaussian(means, log_vars))
