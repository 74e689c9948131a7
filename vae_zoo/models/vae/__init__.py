"""The Gaussian VAE family: a diagonal-Gaussian posterior, an N(0, I) prior, p(x|z) per pixel."""

from vae_zoo.models.vae.beta_vae import BetaVAE
from vae_zoo.models.vae.vae import VAE
