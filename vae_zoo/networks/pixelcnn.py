"""A PixelCNN (van den Oord et al., 2016) over a grid of discrete codes: the learned prior of a
vector-quantised model, p(c) = prod_i p(c_i | c_<i) in raster order."""

import keras
import numpy as np
import tensorflow as tf


def causal_mask(kernel_size, mask_type):
    """`(k, k)` mask of a masked convolution: 1 at the positions before the centre in raster
    order (all rows above, the left part of the centre row); type "B" also keeps the centre."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    mask = np.zeros((kernel_size, kernel_size), "float32")
    centre = kernel_size // 2
    mask[:centre] = 1.0
    mask[centre, : centre + (mask_type == "B")] = 1.0
    return mask


@keras.saving.register_keras_serializable(package="vae_zoo")
class MaskedConv2D(keras.layers.Layer):
    """A 'same' convolution whose kernel sees only positions before the centre (PixelCNN).

    Type "A" (the first layer) excludes the centre, so output i depends on inputs < i only; type
    "B" (later layers) includes it, which keeps that property through the stack.

    Args:
        filters: int. Output channels.
        kernel_size: int. Odd kernel size.
        mask_type: str. "A" or "B".
        activation: Keras activation or None.
    """

    def __init__(self, filters, kernel_size, mask_type, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.mask_type = mask_type
        self.activation = keras.activations.get(activation)
        self.mask = causal_mask(self.kernel_size, mask_type)[:, :, None, None]

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, input_shape[-1], self.filters),
            initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, x):
        kernel = tf.cast(self.kernel, x.dtype) * tf.constant(self.mask, x.dtype)
        y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + tf.cast(self.bias, x.dtype)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "mask_type": self.mask_type,
                "activation": keras.activations.serialize(self.activation)}


def build_pixelcnn(grid_shape, num_codes, filters=64, residual_layers=2, dtype=None):
    """One-hot codes `(h, w, K)` -> logits `(h, w, K)` of p(c_i | c_<i), float32.

    A 1x1 embedding of each position's one-hot code (it sees only its own position), a type-A
    masked 5x5 convolution (it excludes that position), residual type-B 3x3 layers, then two
    1x1 layers. A plain PixelCNN: its blind spot (positions up and to the right that the stack
    never reaches) is small on a 7x7 grid. Sampling runs it once per position, so it is small.
    """
    height, width = grid_shape
    one_hot = keras.Input(shape=(height, width, num_codes), name="codes_one_hot")
    h = keras.layers.Conv2D(max(filters // 2, 1), 1, use_bias=False, dtype=dtype,
                            name="embedding")(one_hot)
    h = MaskedConv2D(filters, 5, "A", activation="relu", dtype=dtype, name="masked_a")(h)
    for i in range(residual_layers):
        update = MaskedConv2D(filters, 3, "B", activation="relu", dtype=dtype,
                              name=f"masked_b_{i}")(h)
        h = keras.layers.Add(dtype=dtype, name=f"residual_{i}")([h, update])
    h = keras.layers.Conv2D(filters, 1, activation="relu", dtype=dtype, name="mix")(h)
    logits = keras.layers.Conv2D(num_codes, 1, dtype="float32", name="logits")(h)
    return keras.Model(one_hot, logits, name="pixelcnn")
