"""The hierarchical family: two stochastic layers, z2 -> z1 -> x."""

from vae_zoo.models.hvae.hvae import HVAE
