"""The VAE-GAN (Larsen et al., 2016): a VAE whose reconstruction is measured in the hidden
features of a discriminator on images, trained with three optimizers (encoder, decoder,
discriminator) inside the model's step."""

from vae_zoo.models.vaegan.vae_gan import VAEGAN
from vae_zoo.models.vaegan.vae_gan import apply_if
from vae_zoo.models.vaegan.vae_gan import equilibrium_gates
