"""MADE (Germain et al., 2015): the autoregressive network of an IAF step, as a Keras 3 layer.

TFP's `tfb.AutoregressiveNetwork` is a tf_keras (Keras 2) layer, which a Keras 3 model neither
trains nor saves (as `tfp.layers`, see `vae_zoo/distributions.py`); this layer computes the same
kind of masked network and is what the `tfb.MaskedAutoregressiveFlow` of an IAF step calls.
"""

import keras
import numpy as np
import tensorflow as tf


def autoregressive_masks(event_size, hidden_units):
    """The 0/1 masks of a MADE with sequential degrees: `[input -> hidden_1, ...,
    hidden_L -> output]`, each `(fan_in, fan_out)`.

    Input i has degree i + 1 (1..d); hidden unit j has degree (j mod max(1, d - 1)) + 1; a hidden
    unit sees the inputs (and units) of degree <= its own, and output i (degree i + 1) the hidden
    units of degree < i + 1. So output i depends on inputs 0..i-1 only: the Jacobian of the
    outputs with respect to the inputs is strictly lower triangular.
    """
    degrees = [np.arange(1, event_size + 1)]
    for units in hidden_units:
        degrees.append(np.arange(units) % max(1, event_size - 1) + 1)
    masks = [(degrees[i][:, None] <= degrees[i + 1][None, :]).astype("float32")
             for i in range(len(hidden_units))]
    masks.append((degrees[-1][:, None] < degrees[0][None, :]).astype("float32"))
    return masks


@keras.saving.register_keras_serializable(package="vae_zoo")
class MADE(keras.layers.Layer):
    """A masked MLP from z `(..., d)` and a context h `(..., c)` to IAF's (m, s), each
    `(..., d)`, output i a function of z_0..z_{i-1} and h only.

    The context (Kingma et al., 2016: the encoder's extra output h) enters the first hidden
    layer and, unmasked, the output layer: through the hidden layers alone it would never reach
    the first output, whose mask sees no hidden unit.

    The outputs are Kingma et al.'s m and s of the numerically stable update (their eq. 14),
    z' = sigmoid(s) z + (1 - sigmoid(s)) m. The bias of s starts at `gate_bias` (sigmoid(2) =
    0.88), so that each step starts near the identity, as in their code.

    Args:
        event_size: int. d, the size of z.
        hidden_units: list of ints. The masked hidden layers (ReLU), at least one.
        context_size: int. c, the size of h.
        gate_bias: float. The initial bias of s.
    """

    def __init__(self, event_size, hidden_units, context_size, gate_bias=2.0, **kwargs):
        super().__init__(**kwargs)
        self.event_size = int(event_size)
        self.hidden_units = [int(u) for u in hidden_units]
        self.context_size = int(context_size)
        self.gate_bias = float(gate_bias)
        self.masks = autoregressive_masks(self.event_size, self.hidden_units)
        self.masks[-1] = np.concatenate([self.masks[-1]] * 2, axis=1)  # m and s, each (.., d)

        # === Weights ===
        sizes = [self.event_size, *self.hidden_units, 2 * self.event_size]
        self.kernels, self.biases = [], []
        for i, mask in enumerate(self.masks):
            fan_out = sizes[i + 1]
            self.kernels.append(self.add_weight(
                shape=(sizes[i], fan_out), name=f"kernel_{i}",
                initializer=keras.initializers.GlorotUniform() if i < len(self.masks) - 1
                else keras.initializers.RandomNormal(stddev=0.01)))
            bias = (keras.initializers.Zeros() if i < len(self.masks) - 1 else
                    keras.initializers.Constant([0.0] * self.event_size
                                                + [self.gate_bias] * self.event_size))
            self.biases.append(self.add_weight(shape=(fan_out,), name=f"bias_{i}",
                                               initializer=bias))
        self.context_kernels = [
            self.add_weight(shape=(self.context_size, sizes[i]), name=f"context_kernel_{i}",
                            initializer=keras.initializers.RandomNormal(stddev=0.01))
            for i in (1, len(sizes) - 1)]

    def call(self, z, context):
        h = z
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            h = tf.matmul(h, kernel * self.masks[i]) + bias
            if i == 0:
                h = tf.nn.relu(h + tf.matmul(context, self.context_kernels[0]))
            elif i < len(self.kernels) - 1:
                h = tf.nn.relu(h)
        h += tf.matmul(context, self.context_kernels[1])
        return h[..., :self.event_size], h[..., self.event_size:]

    def get_config(self):
        return {**super().get_config(), "event_size": self.event_size,
                "hidden_units": self.hidden_units, "context_size": self.context_size,
                "gate_bias": self.gate_bias}
