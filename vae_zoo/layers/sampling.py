import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="vae_zoo")
class Sampling(keras.layers.Layer):
    """Reparameterised draw z = mu + sigma * eps with eps ~ N(0, I).

    Uses `tf.random.normal` on purpose: it lowers to the TFLite builtin `RANDOM_STANDARD_NORMAL`,
    whereas `keras.random.normal` lowers to stateless ops that LiteRT cannot run.

    Call arguments:
        inputs: a pair `(z_mean, z_log_var)` of tensors of shape `(batch, latent_dim)`.
    """

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = tf.random.normal(tf.shape(z_mean), dtype=z_mean.dtype)
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]
