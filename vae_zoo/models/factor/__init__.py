"""The FactorVAE family: the VAE with a total-correlation penalty estimated by a discriminator,
trained by its own optimizer inside the model's step."""

from vae_zoo.models.factor.factor_vae import FactorVAE
from vae_zoo.models.factor.factor_vae import permute_dims
