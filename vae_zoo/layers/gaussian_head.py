import keras
from keras import ops

# exp(-20) .. exp(10): wide enough for any sensible posterior, narrow enough that exp() and the KL
# can never overflow to inf, whatever the encoder outputs early in training.
LOG_VAR_BOUNDS = (-20.0, 10.0)


@keras.saving.register_keras_serializable(package="vae_zoo")
class DiagonalGaussianHead(keras.layers.Layer):
    """Maps features to the mean and clamped log-variance of a diagonal Gaussian q(z|x).

    Args:
        latent_dim: int. Size of z.
        min_log_var: float. The clamp's lower end (default `LOG_VAR_BOUNDS[0]`); a learned
            prior whose density a narrow variance would blow up sets a higher one.
    """

    def __init__(self, latent_dim, min_log_var=LOG_VAR_BOUNDS[0], **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.min_log_var = float(min_log_var)
        self.mean_dense = keras.layers.Dense(latent_dim, name="z_mean")
        self.log_var_dense = keras.layers.Dense(latent_dim, name="z_log_var")

    def build(self, input_shape):
        self.mean_dense.build(input_shape)
        self.log_var_dense.build(input_shape)

    def call(self, features):
        z_mean = self.mean_dense(features)
        z_log_var = ops.clip(self.log_var_dense(features), self.min_log_var, LOG_VAR_BOUNDS[1])
        return z_mean, z_log_var

    def compute_output_shape(self, input_shape):
        shape = (*input_shape[:-1], self.latent_dim)
        return shape, shape

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim,
                "min_log_var": self.min_log_var}
