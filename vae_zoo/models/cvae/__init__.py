"""The conditional family: the VAE with a class label y given to the encoder and the decoder."""

from vae_zoo.models.cvae.cvae import CVAE
