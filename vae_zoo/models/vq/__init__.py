"""Vector-quantised models: VQ-VAE with a PixelCNN prior trained as a second stage."""

from vae_zoo.models.vq.vq_vae import VQVAE
