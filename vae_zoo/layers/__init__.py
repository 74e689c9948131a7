"""Serializable Keras layers and the probability pieces of the ELBO."""

from vae_zoo.layers.distributions import kl_to_standard_normal
from vae_zoo.layers.distributions import posterior
from vae_zoo.layers.distributions import prior
from vae_zoo.layers.gaussian_head import LOG_VAR_BOUNDS
from vae_zoo.layers.gaussian_head import DiagonalGaussianHead
from vae_zoo.layers.likelihoods import LIKELIHOODS
from vae_zoo.layers.likelihoods import BernoulliLikelihood
from vae_zoo.layers.likelihoods import GaussianLikelihood
from vae_zoo.layers.likelihoods import get_likelihood
from vae_zoo.layers.sampling import Sampling
