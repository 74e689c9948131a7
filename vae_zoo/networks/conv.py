import math

import keras

from vae_zoo import layers
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
    h = keras.layers.Flatten(dtype=dtype)(_downsample(x, filters, kernel_size, dtype))
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
    third less time in oneDNN on CPU (`benchmarks/output_layer.py`); outside training it runs as
    a matrix product and a shift-add (`vae_zoo.layers.Conv2DTranspose`): conv_vae's whole decoder
    then takes 1.1-1.3x less CPU time (`benchmarks/results/time_to_result.md`).
    """
    _check_image_shape(image_shape, filters)
    h0, w0 = grid_shape(image_shape, filters)

    z = keras.Input(shape=(latent_dim,), name="z")
    h = z
    for i, units in enumerate(reversed(hidden_units)):
        h = keras.layers.Dense(units, activation="relu", dtype=dtype, name=f"dense_{i}")(h)
    h = keras.layers.Dense(
        h0 * w0 * filters[-1], activation="relu", dtype=dtype, name="project"
    )(h)
    h = keras.layers.Reshape((h0, w0, filters[-1]), dtype=dtype)(h)
    return keras.Model(z, _upsample(h, image_shape, filters, kernel_size, dtype), name="decoder")


def grid_shape(image_shape, filters):
    """`(height, width)` of the feature grid after the stride-2 layers (odd sizes round up)."""
    stride = 2 ** len(filters)
    return math.ceil(image_shape[0] / stride), math.ceil(image_shape[1] / stride)


def _downsample(h, filters, kernel_size, dtype):
    for i, f in enumerate(filters):
        h = keras.layers.Conv2D(f, name=f"conv_{i}", **_stride_2(kernel_size, dtype))(h)
    return h


def _upsample(h, image_shape, filters, kernel_size, dtype):
    """Stride-2 transposed convolutions from the grid to the image, cropped back to its size,
    then p(x|z)'s parameters in float32."""
    height, width, channels = image_shape
    for i, f in enumerate(reversed(filters)):
        h = keras.layers.Conv2DTranspose(f, name=f"deconv_{i}", **_stride_2(kernel_size, dtype))(h)
    params = layers.Conv2DTranspose(  # Keras' layer with a faster inference pass
        channels, kernel_size, padding="same", dtype=dtype, name="output"
    )(h)
    extra_h, extra_w = h.shape[1] - height, h.shape[2] - width  # the upsampled grid's excess
    if extra_h or extra_w:
        params = keras.layers.Cropping2D(
            ((extra_h // 2, extra_h - extra_h // 2), (extra_w // 2, extra_w - extra_w // 2)),
            dtype=dtype,
        )(params)
    return float32_params(params)


def build_conv_grid_encoder(image_shape, code_dim, filters=(32, 64), kernel_size=3, dtype=None):
    """Stride-2 convolutions to a grid of `code_dim`-vectors (a 1x1 convolution, no activation):
    x -> `(*grid_shape, code_dim)`, for models whose code is a grid (vector quantisation)."""
    _check_image_shape(image_shape, filters)
    x = keras.Input(shape=tuple(image_shape), name="x")
    h = _downsample(x, filters, kernel_size, dtype)
    grid = keras.layers.Conv2D(code_dim, 1, dtype=dtype, name="to_code")(h)
    return keras.Model(x, grid, name="grid_encoder")


def build_conv_grid_decoder(image_shape, code_dim, filters=(32, 64), kernel_size=3, dtype=None):
    """The grid encoder's mirror: `(*grid_shape, code_dim)` -> parameters of p(x|z)."""
    _check_image_shape(image_shape, filters)
    grid = keras.Input(shape=(*grid_shape(image_shape, filters), code_dim), name="z")
    h = keras.layers.Conv2D(filters[-1], kernel_size, padding="same", activation="relu",
                            dtype=dtype, name="from_code")(grid)
    return keras.Model(grid, _upsample(h, image_shape, filters, kernel_size, dtype),
                       name="grid_decoder")


register_network("conv", build_conv_encoder, build_conv_decoder)
