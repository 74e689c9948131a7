"""VAEs whose reconstruction term is a perceptual similarity instead of -log p(x|z): no density;
they report the similarity, the reconstruction and the code."""

from vae_zoo.models.perceptual.msssim_vae import MSSSIMVAE
