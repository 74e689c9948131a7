"""Observation models p(x|z): the decoder outputs their parameters, these layers score x under them."""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.errors import UserInputError

tfd = tfp.distributions

# sigma is kept within [1e-3, 10] so a learned scale cannot collapse to a spike of infinite density.
LOG_SIGMA_BOUNDS = (math.log(1e-3), math.log(10.0))


@keras.saving.register_keras_serializable(package="vae_zoo")
class BernoulliLikelihood(keras.layers.Layer):
    """p(x|z) = prod Bernoulli(x_i; sigmoid(logits_i)), for binary or binary-like pixels in [0, 1].

    The log-probability is the (continuous) Bernoulli cross-entropy, exact for binary x.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built = True

    def distribution(self, logits):
        return tfd.Independent(
            tfd.Bernoulli(logits=logits, dtype=logits.dtype),
            reinterpreted_batch_ndims=len(logits.shape) - 1,
        )

    def log_prob(self, x, logits):
        """log p(x|z) in nats, summed over pixels: shape `(batch,)`."""
        return self.distribution(logits).log_prob(x)

    def mean(self, logits):
        return tf.sigmoid(logits)


@keras.saving.register_keras_serializable(package="vae_zoo")
class GaussianLikelihood(keras.layers.Layer):
    """p(x|z) = N(x; f(z), sigma^2 I) with sigma fixed (the classic formulation) or learned.

    Args:
        sigma: float. The observation noise scale, or its initial value when learned.
        learn_sigma: bool. Learn one shared log(sigma) by gradient descent.
    """

    def __init__(self, sigma=1.0, learn_sigma=False, **kwargs):
        super().__init__(**kwargs)
        if not sigma > 0:
            raise UserInputError(f"likelihood sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        self.learn_sigma = bool(learn_sigma)
        self.log_sigma = self.add_weight(
            shape=(),
            name="log_sigma",
            initializer=keras.initializers.Constant(math.log(self.sigma)),
            trainable=self.learn_sigma,
        )
        self.built = True

    def scale(self):
        return tf.exp(tf.clip_by_value(self.log_sigma, *LOG_SIGMA_BOUNDS))

    def distribution(self, mean):
        scale = tf.cast(self.scale(), mean.dtype)
        return tfd.Independent(
            tfd.Normal(loc=mean, scale=scale), reinterpreted_batch_ndims=len(mean.shape) - 1
        )

    def log_prob(self, x, mean):
        """log p(x|z) in nats, summed over pixels: shape `(batch,)`."""
        return self.distribution(mean).log_prob(x)

    def mean(self, mean):
        return mean

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "learn_sigma": self.learn_sigma}


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood}


def get_likelihood(name, sigma=1.0, learn_sigma=False):
    if name == "bernoulli":
        return BernoulliLikelihood(dtype="float32", name="likelihood")
    if name == "gaussian":
        return GaussianLikelihood(
            sigma=sigma, learn_sigma=learn_sigma, dtype="float32", name="likelihood"
        )
    raise UserInputError(f"unknown likelihood {name!r}; choose one of {sorted(LIKELIHOODS)}")
