import math

import keras

from vae_zoo.layers import DiagonalGaussianHead
from vae_zoo.networks.precision import float32_params


def build_dense_encoder(image_shape, latent_dim, hidden_units=(512, 256), dtype=None, **unused):
    """MLP on the flattened image. Takes any input shape (images or plain vectors)."""
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = keras.layers.Flatten(dtype=dtype)(x)
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    z_mean, z_log_var = DiagonalGaussianHead(latent_dim, dtype="float32", name="posterior")(h)
    return keras.Model(x, [z_mean, z_log_var], name="encoder")


def build_dense_decoder(image_shape, latent_dim, hidden_units=(512, 256), dtype=None, **unused):
    """Mirror of the encoder, ending in one linear unit per pixel."""
    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden_units)):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    h = keras.layers.Dense(math.prod(image_shape), dtype=dtype, name="output")(h)
    params = keras.layers.Reshape(tuple(image_shape), dtype=dtype)(h)
    return keras.Model(z, float32_params(params), name="decoder")
