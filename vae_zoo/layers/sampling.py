import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="vae_zoo")
class Sampling(keras.layers.Layer):
    """Reparameterised draw z = mu + sigma * eps with eps ~ N(0, I).

    Without a seed it uses `tf.random.normal` on purpose: that lowers to the TFLite builtin
    `RANDOM_STANDARD_NORMAL`, whereas `keras.random.normal` lowers to stateless ops that LiteRT
    cannot run. Training passes a `seed` (from the model's step counter): eps is then a stateless
    function of the step and of the example's row in the *global* batch, so a resumed run draws
    the same noise as an uninterrupted one, and N replicas draw what one device would.

    Call arguments:
        inputs: a pair `(z_mean, z_log_var)` of tensors of shape `(batch, latent_dim)`.
        seed: optional int32 tensor of shape `(2,)`.
    """

    def call(self, inputs, seed=None):
        z_mean, z_log_var = inputs
        if seed is None:
            eps = tf.random.normal(tf.shape(z_mean), dtype=z_mean.dtype)
        else:
            eps = global_batch_noise(tf.shape(z_mean), seed, z_mean.dtype)
        return z_mean + tf.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def global_batch_noise(local_shape, seed, dtype):
    """This replica's rows of N(0, I) noise drawn for the whole global batch from `seed`.

    The batch is the second-to-last axis (`(batch, latent)`, or `(k, batch, latent)` for k draws
    per example); see `global_batch_rows`.
    """
    rank = local_shape.shape[0]
    inner = tf.concat([local_shape[: rank - 2], local_shape[rank - 1 :]], 0)
    def normal(shape):
        return tf.random.stateless_normal(shape, seed=seed, dtype=dtype)

    noise = global_batch_rows(normal, local_shape[rank - 2], inner)
    if rank == 3:
        noise = tf.transpose(noise, [1, 0, 2])
    return noise


def global_batch_rows(make, local, inner):
    """This replica's `local` rows of `make(shape)`, a random draw made for the whole global
    batch (batch first, then `inner`).

    Replica r of R holds rows [r * local, (r + 1) * local) of the global batch, as
    `tf.distribute` splits it, so the same example gets the same draw on any number of replicas.
    """
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    replica = context.replica_id_in_sync_group if context is not None else 0
    rows = make(tf.concat([[local * replicas], inner], 0))
    return rows[replica * local : (replica + 1) * local]
