"""The Gaussian VAE family: a diagonal-Gaussian posterior, an N(0, I) prior, p(x|z) per pixel,
trained on the ELBO (VAE), a reweighted KL (BetaVAE), the k-sample bound (IWAE) or its
variants (MIWAE, CIWAE, PIWAE)."""

from vae_zoo.models.vae.beta_vae import BetaVAE
from vae_zoo.models.vae.iwae import IWAE
from vae_zoo.models.vae.miwae import CIWAE
from vae_zoo.models.vae.miwae import MIWAE
from vae_zoo.models.vae.miwae import PIWAE
from vae_zoo.models.vae.schedules import KLSchedule
from vae_zoo.models.vae.vae import VAE
