"""Deterministic autoencoders: the plain AE and the regularised RAE (Ghosh et al., 2020), with no
density: they report reconstruction and code statistics."""

from vae_zoo.models.ae.ae import AE
from vae_zoo.models.ae.rae import RAE
