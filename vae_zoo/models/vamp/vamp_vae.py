import keras
import tensorflow as tf

from vae_zoo.distributions import diagonal_gaussian
from vae_zoo.distributions import gaussian_mixture
from vae_zoo.errors import UserInputError
from vae_zoo.models.base import register_model
from vae_zoo.models.vae import VAE


@keras.saving.register_keras_serializable(package="vae_zoo")
class PseudoInputs(keras.layers.Layer):
    """K learned images u_1..u_K: the inputs whose posteriors make up the VampPrior.

    Stored unconstrained and clipped to the pixel range [0, 1] where used (the hard-tanh of
    Tomczak & Welling's code), and initialised at random, pixels ~ N(0.05, 0.01) as in their MNIST
    code (jmtomczak/vae_vampprior): no data is needed to build the model.

    Args:
        num_inputs: int. K.
        image_shape: tuple of ints. Shape of one input.
    """

    def __init__(self, num_inputs, image_shape, **kwargs):
        super().__init__(**kwargs)
        self.num_inputs = int(num_inputs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.values = self.add_weight(
            shape=(self.num_inputs, *self.image_shape), name="values",
            initializer=keras.initializers.RandomNormal(mean=0.05, stddev=0.01),
        )
        self.built = True

    def images(self):
        """The K pseudo-inputs in [0, 1], `(K, *image_shape)`."""
        return tf.clip_by_value(tf.convert_to_tensor(self.values), 0.0, 1.0)

    def get_config(self):
        return {**super().get_config(), "num_inputs": self.num_inputs,
                "image_shape": list(self.image_shape)}


@register_model
class VampVAE(VAE):
    """VAE with a VampPrior (Tomczak & Welling, 2018): p(z) = 1/K sum_k q(z|u_k).

    The prior is the mixture of the encoder's posteriors at K learned pseudo-inputs u_k, so prior
    and posterior are learned together. The KL has no closed form and is estimated at the drawn
    z ~ q(z|x), per example:

        loss = -log p(x|z) + w(t) * beta * [log q(z|x) - log (1/K) sum_k q(z|u_k)]

    `sample(n)` draws a component k uniformly, then z ~ q(z|u_k) (not N(0, I)), with the
    `tf.random.uniform` and `tf.random.normal` ops that TFLite runs; `log_importance_weights`, hence
    the IW NLL, score z under the same mixture. Calling the model also returns the components'
    `prior_mean` and `prior_log_var`, `(K, latent_dim)`, computed in the training graph so that
    the pseudo-inputs learn.

    Args:
        num_pseudo_inputs: int. K, the number of pseudo-inputs and mixture components (the
            paper uses 500 on 60,000 MNIST digits).
        **kwargs: the arguments of `VAE`.
    """

    def __init__(self, image_shape, num_pseudo_inputs=100, **kwargs):
        if int(num_pseudo_inputs) < 1:
            raise UserInputError(
                f"num_pseudo_inputs must be a positive integer, got {num_pseudo_inputs}")
        super().__init__(image_shape, **kwargs)

        # === Layers ===
        self.pseudo_inputs = PseudoInputs(num_pseudo_inputs, image_shape, dtype="float32",
                                          name="pseudo_inputs")

        # === Config ===
        self.num_pseudo_inputs = int(num_pseudo_inputs)

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        prior_mean, prior_log_var = self.encoder(self.pseudo_inputs.images(), training=training)
        return {**outputs, "prior_mean": prior_mean, "prior_log_var": prior_log_var}

    def kl_divergence(self, outputs):
        """log q(z|x) - log p(z) at the drawn z: a one-sample estimate of the KL."""
        z = outputs["z"]
        prior = gaussian_mixture(outputs["prior_mean"], outputs["prior_log_var"])
        return diagonal_gaussian(outputs["z_mean"], outputs["z_log_var"]).log_prob(z) - (
            prior.log_prob(z))

    def prior(self):
        return gaussian_mixture(*self.encoder(self.pseudo_inputs.images(), training=False))

    def sample_latents(self, n, seed=None):
        means, log_vars = self.encoder(self.pseudo_inputs.images(), training=False)
        if seed is None:
            u = tf.random.uniform([n])
            eps = tf.random.normal([n, self.latent_dim])
        else:
            u = tf.random.stateless_uniform([n], seed=[int(seed), 0])
            eps = tf.random.stateless_normal([n, self.latent_dim], seed=[int(seed), 1])
        # k = floor(K u), u ~ U[0, 1): uniform over the components, with TFLite builtins only.
        k = tf.minimum(tf.cast(tf.floor(u * self.num_pseudo_inputs), tf.int32),
                       self.num_pseudo_inputs - 1)
        return tf.gather(means, k) + tf.exp(0.5 * tf.gather(log_vars, k)) * eps

    def family_pictures(self, limit=100):
        """`pseudo_inputs`: the learned u_k, whose posteriors make up the prior."""
        images = keras.ops.convert_to_numpy(self.pseudo_inputs.images()[:limit])
        return {"pseudo_inputs": (images, 10)}

    def get_config(self):
        return {**super().get_config(), "num_pseudo_inputs": self.num_pseudo_inputs}
