"""Hyperspherical latents: a von Mises-Fisher posterior and a uniform prior on the sphere
(S-VAE, Davidson et al., 2018)."""

from vae_zoo.models.hyperspherical.svae import SVAE
from vae_zoo.models.hyperspherical.von_mises_fisher import VonMisesFisherHead
from vae_zoo.models.hyperspherical.von_mises_fisher import von_mises_fisher_draws
