"""`two_stage`: a second, small VAE on the codes (Dai & Wipf, 2019; pythae's `TwoStageVAESampler`).

The first VAE's aggregate posterior does not fill N(0, I) where its codes live on a manifold of
lower dimension; a second VAE u -> z' with a Gaussian decoder whose variance gamma is learned
(gamma shrinks towards 0 as it fits, the paper's point) learns to map N(0, I) onto the codes.
Drawing: z' ~ N(0, I), code = the second decoder's mean. Dense layers (the paper's second stage
is dense too), in float32, as a Keras 3 model.
"""

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.samplers import fitting
from vae_zoo.samplers.base import Sampler
from vae_zoo.samplers.base import register_sampler

LOG_2PI = float(np.log(2 * np.pi))


class SecondStage(keras.Model):
    """The second VAE: encoder u -> (mean, log var) of z', decoder z' -> mean of u, log gamma."""

    def __init__(self, latent_dim, hidden_units, **kwargs):
        super().__init__(dtype="float32", **kwargs)

        # === Layers ===
        def mlp(outputs, name):
            return keras.Sequential(
                [keras.Input((latent_dim,))]
                + [keras.layers.Dense(u, activation="relu", dtype="float32") for u in hidden_units]
                + [keras.layers.Dense(outputs, dtype="float32")], name=name)

        self.encoder = mlp(2 * latent_dim, "encoder")
        self.decoder = mlp(latent_dim, "decoder")
        self.log_gamma = self.add_weight(shape=(), initializer="zeros", name="log_gamma")
        self.latent_dim = latent_dim

    def negative_elbo(self, u, eps):
        """Per code: -log N(u; decoder(z'), gamma I) + KL(q(z'|u) || N(0, I)), at
        z' = mean + sd eps."""
        mean, log_var = tf.split(self.encoder(u), 2, axis=-1)
        z = mean + tf.exp(0.5 * log_var) * eps
        error = tf.reduce_sum(tf.square(u - self.decoder(z)), axis=-1)
        reconstruction = 0.5 * (error / tf.exp(self.log_gamma)
                                + self.latent_dim * (self.log_gamma + LOG_2PI))
        kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1 - log_var, axis=-1)
        return reconstruction + kl

    def log_weights(self, u, eps):
        """log p(u|z'_k) + log p(z'_k) - log q(z'_k|u) for noise eps `(k, n, d)`: `(k, n)`."""
        mean, log_var = tf.split(self.encoder(u), 2, axis=-1)
        z = mean + tf.exp(0.5 * log_var) * eps
        decoded = tf.reshape(self.decoder(tf.reshape(z, [-1, self.latent_dim])), tf.shape(z))
        log_p_u = -0.5 * (tf.reduce_sum(tf.square(u - decoded), -1) / tf.exp(self.log_gamma)
                          + self.latent_dim * (self.log_gamma + LOG_2PI))
        log_p_z = -0.5 * tf.reduce_sum(tf.square(z) + LOG_2PI, -1)
        log_q = -0.5 * tf.reduce_sum(tf.square(eps) + LOG_2PI + log_var, -1)
        return log_p_u + log_p_z - log_q


@register_sampler("two_stage")
class TwoStageSampler(Sampler):
    """Args (options):
        hidden_units: list of ints. Each network's hidden layers (ReLU).
        steps: int. Adam steps of training (a bound on its time).
        batch_size: int.
        learning_rate: float.
    """

    options = {"hidden_units": [256, 256], "steps": 2000, "batch_size": 256,
               "learning_rate": 1e-3}
    limits = {"hidden_units": (1, 4096), "steps": (1, 1_000_000), "batch_size": (1, 100_000),
              "learning_rate": (1e-7, 1.0)}
    IW_SAMPLES = 64  # log_prob is the 64-sample importance-weighted bound (a lower bound)

    def network(self, latent_dim):
        return SecondStage(latent_dim, list(self.config["hidden_units"]))

    def fit_arrays(self, codes, seed, log):
        keras.utils.set_random_seed(seed)
        self.latent_dim = codes.shape[1]
        shift, scale = fitting.standardisation(codes)
        self.model = self.network(self.latent_dim)
        self.shift, self.scale = tf.constant(shift, tf.float32), tf.constant(scale, tf.float32)
        optimizer = keras.optimizers.Adam(self.config["learning_rate"])
        variables = self.model.trainable_variables
        optimizer.build(variables)
        generator = tf.random.Generator.from_seed(seed)

        @tf.function(reduce_retracing=True)
        def step(batch):
            u = (batch - self.shift) / self.scale
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(self.model.negative_elbo(u, generator.normal(tf.shape(u))))
            optimizer.apply(tape.gradient(loss, variables), variables)
            # nats per code of the codes themselves (the standardisation's log-det added back)
            return loss + tf.reduce_sum(tf.math.log(self.scale))

        train, held_out = fitting.split(codes, seed)
        log(f"two_stage: fitting a second VAE (dense {self.config['hidden_units']}, latent "
            f"{self.latent_dim}) to {len(train)} codes ({len(held_out)} held out), "
            f"{self.config['steps']} steps; held-out NLL by its {self.IW_SAMPLES}-sample bound")
        self.fitted_on.update(fitting.train(
            step, lambda c: -self.log_prob(c, seed=seed).mean(), train, held_out,
            self.config["steps"], self.config["batch_size"], seed, log, "two_stage"))
        self.fitted_on["gamma"] = float(np.exp(self.model.log_gamma.numpy()))
        arrays = {"shift": shift, "scale": scale}
        arrays.update({f"w{j}": w for j, w in enumerate(self.model.get_weights())})
        return arrays

    def build(self):
        if getattr(self, "model", None) is None:
            self.model = self.network(self.latent_dim)
            self.model.set_weights([self.arrays[f"w{j}"]
                                    for j in range(len(self.model.get_weights()))])
        self.shift = tf.constant(self.arrays["shift"])
        self.scale = tf.constant(self.arrays["scale"])

    def draw(self, n, seed):
        return self.shift + self.scale * self.model.decoder(self.noise(n, seed))

    def log_prob(self, codes, seed=0):
        """The importance-weighted bound (k = 64) on log p(codes): a lower bound."""
        u = (tf.constant(np.asarray(codes, "float32")) - self.shift) / self.scale
        eps = tf.random.stateless_normal([self.IW_SAMPLES, *u.shape], seed=[int(seed), 7])
        log_w = self.model.log_weights(u, eps)
        bound = tf.reduce_logsumexp(log_w, axis=0) - np.log(self.IW_SAMPLES)
        return (bound - tf.reduce_sum(tf.math.log(self.scale))).numpy().astype("float64")

    def expected_shapes(self, config, latent_dim):
        shapes = {"shift": (latent_dim,), "scale": (latent_dim,)}
        shapes.update({f"w{j}": tuple(w.shape)
                       for j, w in enumerate(self.network(latent_dim).get_weights())})
        return shapes

    def check_arrays(self, path):
        from vae_zoo.errors import UserInputError

        if (self.arrays["scale"] <= 0).any():
            raise UserInputError(f"{path} is damaged: a scale is not positive")
