"""The VampPrior family: the VAE with a prior that is a mixture of posteriors of learned inputs."""

from vae_zoo.models.vamp.vamp_vae import PseudoInputs
from vae_zoo.models.vamp.vamp_vae import VampVAE
