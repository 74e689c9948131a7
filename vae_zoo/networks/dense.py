import math

import keras

from vae_zoo.networks import register_network
from vae_zoo.networks.precision import float32_params


def build_dense_encoder(image_shape, hidden_units=(512, 256), dtype=None):
    """MLP on the flattened image. Takes any input shape (images or plain vectors)."""
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = keras.layers.Flatten(dtype=dtype)(x)
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    return keras.Model(x, h, name="encoder_network")


def build_dense_decoder(image_shape, latent_dim, hidden_units=(512, 256), dtype=None):
    """Mirror of the encoder, ending in one linear unit per pixel."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden_units)):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    h = keras.layers.Dense(math.prod(image_shape), dtype=dtype, name="output")(h)
    params = keras.layers.Reshape(tuple(image_shape), dtype=dtype)(h)
    return keras.Model(z, float32_params(params), name="decoder")


register_network("dense", build_dense_encoder, build_dense_decoder)
