"""Serializable Keras layers: the posterior head, the reparameterised sampler, p(x|z), and a
faster inference pass for the conv decoder's output layer."""

from vae_zoo.layers.conv_transpose import Conv2DTranspose
from vae_zoo.layers.gaussian_head import LOG_VAR_BOUNDS
from vae_zoo.layers.gaussian_head import DiagonalGaussianHead
from vae_zoo.layers.likelihoods import LIKELIHOODS
from vae_zoo.layers.likelihoods import BernoulliLikelihood
from vae_zoo.layers.likelihoods import GaussianLikelihood
from vae_zoo.layers.likelihoods import get_likelihood
from vae_zoo.layers.sampling import Sampling
from vae_zoo.layers.vector_quantizer import VectorQuantizer
