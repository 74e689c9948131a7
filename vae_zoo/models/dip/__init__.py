"""The DIP-VAE family: the VAE plus a penalty pulling the aggregate posterior's covariance to I."""

from vae_zoo.models.dip.dip_vae import DIPVAE
