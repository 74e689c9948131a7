"""Encoder/decoder builders. Each builds Keras functional models from an image shape and a latent size.

An encoder maps `x` of shape `image_shape` to `(z_mean, z_log_var)`; a decoder maps `z` to the
parameters of p(x|z) (logits or means), of shape `image_shape`.
"""

from vae_zoo.errors import UserInputError
from vae_zoo.networks.conv import build_conv_decoder
from vae_zoo.networks.conv import build_conv_encoder
from vae_zoo.networks.dense import build_dense_decoder
from vae_zoo.networks.dense import build_dense_encoder

NETWORKS = {
    "dense": (build_dense_encoder, build_dense_decoder),
    "conv": (build_conv_encoder, build_conv_decoder),
}


def build_networks(network, image_shape, latent_dim, **network_args):
    """Returns `(encoder, decoder)` for the named network family."""
    if network not in NETWORKS:
        raise UserInputError(f"unknown network {network!r}; choose one of {sorted(NETWORKS)}")
    build_encoder, build_decoder = NETWORKS[network]
    return (
        build_encoder(image_shape, latent_dim, **network_args),
        build_decoder(image_shape, latent_dim, **network_args),
    )
