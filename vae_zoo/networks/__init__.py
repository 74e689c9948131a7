"""Encoder and decoder networks, built from an image shape: one module per family.

An encoder maps `x` of shape `image_shape` to a feature vector; the model family puts its own
posterior head on top (a diagonal Gaussian, a codebook, ...). A decoder maps `z` to the
parameters of p(x|z) (logits or means) of shape `image_shape`, in float32.
"""

import collections
import inspect

from vae_zoo.errors import UserInputError
from vae_zoo.registry import Registry
from vae_zoo.registry import import_submodules

Network = collections.namedtuple("Network", ["build_encoder", "build_decoder"])
NETWORKS = Registry("network")


def register_network(name, encoder_builder, decoder_builder):
    NETWORKS.register(name)(Network(encoder_builder, decoder_builder))


def network_arguments(network):
    """The config arguments a network family takes (those of its encoder and decoder)."""
    family = NETWORKS.get(network)
    names = set()
    for builder in family:
        names |= set(inspect.signature(builder).parameters)
    return sorted(names - {"image_shape", "latent_dim", "dtype"})


def build_encoder(network, image_shape, dtype=None, **args):
    """The named family's encoder network (x -> features); `args` set to None take its defaults.

    An argument the family does not take is an error, not silently dropped.
    """
    return _call(NETWORKS.get(network).build_encoder, network, args, tuple(image_shape), dtype=dtype)


def build_decoder(network, image_shape, latent_dim, dtype=None, **args):
    """The named family's decoder (z -> parameters of p(x|z)), with the same argument rules."""
    return _call(NETWORKS.get(network).build_decoder, network, args, tuple(image_shape),
                 int(latent_dim), dtype=dtype)


def _call(builder, network, args, *positional, dtype):
    given = {key: value for key, value in args.items() if value is not None}
    valid = network_arguments(network)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise UserInputError(
            f"model.{', model.'.join(unknown)} does not apply to the {network} network; "
            f"it takes {', '.join(valid)}"
        )
    accepted = inspect.signature(builder).parameters
    return builder(*positional, dtype=dtype, **{k: v for k, v in given.items() if k in accepted})


import_submodules(__name__, __path__)
