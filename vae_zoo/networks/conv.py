import math

import keras

from vae_zoo.errors import UserInputError
from vae_zoo.networks import register_network
from vae_zoo.networks.precision import float32_params


def _check_image_shape(image_shape, filters):
    if len(image_shape) != 3:
        raise UserInputError(
            f"the conv network needs images of shape (height, width, channels), got shape "
            f"{tuple(image_shape)}; use a dense model (--model dense_vae) for vectors"
        )
    if not filters:
        raise UserInputError("the conv network needs at least one entry in model.filters")


def _stride_2(kernel_size, dtype):
    """The arguments every down- and up-sampling layer shares."""
    return dict(kernel_size=kernel_size, strides=2, padding="same", activation="relu", dtype=dtype)


def build_conv_encoder(image_shape, filters=(32, 64), hidden_units=(256,), kernel_size=3, dtype=None):
    """Stride-2 convolutions, then dense layers. Any height and width (odd sizes round up)."""
    _check_image_shape(image_shape, filters)
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = x
    for i, f in enumerate(filters):
        h = keras.layers.Conv2D(f, name=f"conv_{i}", **_stride_2(kernel_size, dtype))(h)
    h = keras.layers.Flatten(dtype=dtype)(h)
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    return keras.Model(x, h, name="encoder_network")


def build_conv_decoder(
    image_shape, latent_dim, filters=(32, 64), hidden_units=(256,), kernel_size=3, dtype=None
):
    """Mirror of the encoder with stride-2 transposed convolutions.

    The feature map starts at ceil(size / 2**len(filters)) so that upsampling covers the image;
    a centred crop removes the excess, which lets 28x28 work with three stride-2 layers.

    The output layer is a stride-1 transposed convolution: the same map as a `Conv2D` (with the
    kernel flipped), but with few output channels its forward and backward passes take about a
    third less time in oneDNN on CPU (`benchmarks/output_layer.py`).
    """
    _check_image_shape(image_shape, filters)
    height, width, channels = image_shape
    stride = 2 ** len(filters)
    h0, w0 = math.ceil(height / stride), math.ceil(width / stride)

    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden_units)):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    h = keras.layers.Dense(
        h0 * w0 * filters[-1], activation="relu", dtype=dtype, name="project"
    )(h)
    h = keras.layers.Reshape((h0, w0, filters[-1]), dtype=dtype)(h)
    for i, f in enumerate(reversed(filters)):
        h = keras.layers.Conv2DTranspose(f, name=f"deconv_{i}", **_stride_2(kernel_size, dtype))(h)
    params = keras.layers.Conv2DTranspose(
        channels, kernel_size, padding="same", dtype=dtype, name="output"
    )(h)
    extra_h, extra_w = h0 * stride - height, w0 * stride - width
    if extra_h or extra_w:
        params = keras.layers.Cropping2D(
            ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
            dtype=dtype,
        )(params)
    return keras.Model(z, float32_params(params), name="decoder")


register_network("conv", build_conv_encoder, build_conv_decoder)
