import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="vae_zoo")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """Keras' `Conv2DTranspose` whose inference pass, stride 1 and 'same' padding, is one matrix
    product and a shift-add: for a conv decoder's output layer, to few channels.

    oneDNN runs a transposed convolution to one channel at a few percent of the CPU's speed: in
    the conv decoder (28x28x32 -> 1) it took a quarter of the whole decoder's time for 3.5% of
    its FLOPs, which made the importance-weighted NLL, thousands of decoder passes per image,
    that much slower (`benchmarks/time_to_result.py`). Outside training this layer computes each
    kernel tap's contribution at every pixel at once, a `(kh*kw*filters, channels)` product,
    and adds the taps' planes shifted into place: the same sums in another order, equal up to
    float rounding. Training keeps the stock op, whose backward pass is the faster one.
    Weights, config and every other setting are Keras' own. So is the class name, on purpose:
    `.keras` files locate a layer's weights by its class name (`conv2d_transpose_2`), so models
    and checkpoints saved with the stock layer load into this one, and the other way round.
    """

    def call(self, inputs, training=None):
        if training or not self._taps_apply():
            return super().call(inputs)
        kh, kw, filters, channels = self.kernel.shape
        height, width = inputs.shape[1], inputs.shape[2]
        kernel = tf.reshape(self.kernel, (kh * kw * filters, channels))
        pixels = tf.reshape(inputs, (-1, height * width, channels))
        taps = tf.matmul(kernel, pixels, transpose_b=True)  # (batch, kh*kw*filters, h*w)
        taps = tf.reshape(taps, (-1, kh * kw * filters, height, width))  # 4-D: TFLite pads those
        # Tap (i, j) of input pixel (p, q) lands on output pixel (p + i - top, q + j - left).
        top, left = (kh - 1) // 2, (kw - 1) // 2
        taps = tf.pad(taps, [[0, 0], [0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1]])
        outputs = tf.add_n([
            taps[:, (i * kw + j) * filters:(i * kw + j + 1) * filters,
                 kh - 1 - i + top:kh - 1 - i + top + height,
                 kw - 1 - j + left:kw - 1 - j + left + width]
            for i in range(kh) for j in range(kw)])
        outputs = tf.transpose(outputs, (0, 2, 3, 1))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

    def _taps_apply(self):
        return (tuple(self.strides) == (1, 1) and self.padding == "same"
                and tuple(self.dilation_rate) == (1, 1) and self.data_format == "channels_last")
