"""The total-correlation family: the VAE with its KL split into three terms weighted apart."""

from vae_zoo.models.tcvae.beta_tcvae import BetaTCVAE
