"""The von Mises-Fisher posterior of a hyperspherical VAE: its head and reparameterised draws.

TFP's `VonMisesFisher` gives the density and the KL to `SphericalUniform`, but its samples are
not reparameterised (TFP 0.25: `NOT_REPARAMETERIZED`), so no gradient would reach the encoder
through z. The draws here follow Davidson et al. (2018, Algorithm 1 and section 3.3): Wood's
(1994) rejection sampler for the component w along the mean, written as w = h(eps, kappa) of a
Beta draw eps so that the gradient flows to kappa through h (the paper's g_rep; like its code we
drop the small correction term g_cor), then a uniform direction orthogonal to e1 and the
Householder reflection that takes e1 to the mean, through which the gradient reaches the mean.

The rejection loop is unrolled into a fixed number of proposals drawn at once (the first accepted
one is kept): Wood's sampler accepts at least 65% of its proposals (measured for d from 2 to 256
and kappa from 0.01 to 10^4; the worst is d = 2 at large kappa), so 16 proposals all fail with
probability below 10^-7, and then the last one is used.
A fixed shape keeps the step one compiled graph with no `while` loop.
"""

import keras
import tensorflow as tf
from keras import ops

from vae_zoo.layers.sampling import global_batch_rows

PROPOSALS = 16


@keras.saving.register_keras_serializable(package="vae_zoo")
class VonMisesFisherHead(keras.layers.Layer):
    """Maps features to the mean direction (unit norm) and concentration kappa > 1 of q(z|x).

    kappa = 1 + softplus(.), bounded below so that the posterior never becomes the uniform prior
    itself (Davidson et al.'s code does the same), where the KL's gradient vanishes.

    Args:
        latent_dim: int. Size of z: the sphere is S^(latent_dim - 1) in R^latent_dim.
    """

    def __init__(self, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.mean_dense = keras.layers.Dense(latent_dim, name="z_mean")
        self.kappa_dense = keras.layers.Dense(1, name="kappa")

    def build(self, input_shape):
        self.mean_dense.build(input_shape)
        self.kappa_dense.build(input_shape)

    def call(self, features):
        mean = self.mean_dense(features)
        mean = mean / ops.sqrt(ops.maximum(ops.sum(mean * mean, axis=-1, keepdims=True), 1e-12))
        kappa = 1.0 + ops.softplus(self.kappa_dense(features))[..., 0]
        return mean, kappa

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.latent_dim), tuple(input_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim}


def von_mises_fisher_draws(mean, kappa, seed=None):
    """z ~ vMF(mean, kappa), one per row, differentiable in both (see the module).

    Args:
        mean: `(batch, d)` unit vectors, d >= 2.
        kappa: `(batch,)` concentrations > 0.
        seed: a stateless seed (shape `(2,)` integers: the same seed draws the same z), or None.

    Returns:
        `(batch, d)` unit vectors.
    """
    mean = tf.convert_to_tensor(mean, tf.float32)
    kappa = tf.convert_to_tensor(kappa, tf.float32)[:, None]
    d = mean.shape[-1]
    batch = tf.shape(mean)[0]
    m1 = float(d - 1)
    root = tf.sqrt(4.0 * kappa**2 + m1**2)
    b = m1 / (2.0 * kappa + root)  # (-2 kappa + root) / (d - 1), without the cancellation
    a = (m1 + 2.0 * kappa + root) / 4.0
    log_bound = 4.0 * a * b / (1.0 + b) - m1 * tf.math.log(m1)

    seeds = ([None] * 4 if seed is None else
             tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)))

    def draw(make, inner):
        # Batch-first; with a seed, row i of the global batch gets the same draws on any number
        # of replicas.
        if seed is None:
            return make(tf.concat([[batch], inner], 0))
        return global_batch_rows(make, batch, inner)

    proposals = [PROPOSALS, 1]
    eps = tf.stop_gradient(draw(lambda shape: _beta(shape, m1 / 2.0, seeds[0], seeds[1]),
                                proposals))
    u = draw(lambda shape: _uniform(shape, seeds[2]), proposals)
    eps, u = tf.transpose(eps, [1, 0, 2]), tf.transpose(u, [1, 0, 2])  # (proposals, batch, 1)
    w = (1.0 - (1.0 + b) * eps) / (1.0 - (1.0 - b) * eps)
    t = 2.0 * a * b / (1.0 - (1.0 - b) * eps)
    accepted = tf.stop_gradient(m1 * tf.math.log(t) - t + log_bound >= tf.math.log(u))
    # The first accepted proposal of each row (the last one if none was).
    first = tf.argmax(tf.concat([tf.cast(accepted[:-1], tf.int32),
                                 tf.ones_like(tf.cast(accepted[-1:], tf.int32))], 0), axis=0)[:, 0]
    w = tf.gather(tf.transpose(w, [1, 0, 2]), first, batch_dims=1)  # (batch, 1)

    direction = draw(lambda shape: _normal(shape, seeds[3]), [d - 1])
    direction = tf.math.l2_normalize(direction, axis=-1)
    along_e1 = tf.concat([w, tf.sqrt(tf.maximum(1.0 - w**2, 1e-12)) * direction], axis=-1)
    return householder(along_e1, mean)


def householder(z, mean):
    """Reflects `z` by the hyperplane that takes e1 to `mean` (row by row)."""
    e1 = tf.one_hot(0, mean.shape[-1], dtype=mean.dtype)
    normal = e1 - mean
    norm = tf.norm(normal, axis=-1, keepdims=True)
    normal = tf.where(norm > 1e-6, normal / tf.maximum(norm, 1e-6), tf.zeros_like(normal))
    return z - 2.0 * tf.reduce_sum(z * normal, axis=-1, keepdims=True) * normal


def _uniform(shape, seed):
    if seed is None:
        return tf.random.uniform(shape, 1e-12, 1.0)
    return tf.random.stateless_uniform(shape, seed, 1e-12, 1.0)


def _normal(shape, seed):
    return tf.random.normal(shape) if seed is None else tf.random.stateless_normal(shape, seed)


def _beta(shape, concentration, seed_a, seed_b):
    """Beta(c, c) draws as G_a / (G_a + G_b) of two Gamma(c) draws."""
    if seed_a is None:
        g_a, g_b = tf.random.gamma(shape, concentration), tf.random.gamma(shape, concentration)
    else:
        alpha = tf.fill(shape, concentration)
        g_a = tf.random.stateless_gamma(shape, seed_a, alpha)
        g_b = tf.random.stateless_gamma(shape, seed_b, alpha)
    return g_a / (g_a + g_b)
