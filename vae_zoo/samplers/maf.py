"""`maf`: a masked autoregressive flow on the codes (Papamakarios et al., 2017; pythae's
`MAFSampler`), TFP's `tfb.MaskedAutoregressiveFlow` over `tfb.AutoregressiveNetwork`s.

Training maximises log p(codes) (the flow's inverse, one network pass per flow); drawing runs
the forward pass on N(0, I) noise, latent by latent. Both are TFP ops on plain variables, which
the SavedModel keeps and which convert to TFLite builtins (checked at every export).
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.samplers import fitting
from vae_zoo.samplers.base import Sampler
from vae_zoo.samplers.base import register_sampler

tfb = tfp.bijectors


@register_sampler("maf")
class MAFSampler(Sampler):
    """Args (options):
        flows: int. MADE flows, the latents' order reversed between them.
        hidden_units: list of ints. Each MADE's hidden layers (ReLU).
        steps: int. Adam steps of training (a bound on its time).
        batch_size: int.
        learning_rate: float.
    """

    options = {"flows": 3, "hidden_units": [64, 64], "steps": 1000, "batch_size": 256,
               "learning_rate": 1e-3}
    limits = {"flows": (1, 32), "hidden_units": (1, 4096), "steps": (1, 1_000_000),
              "batch_size": (1, 100_000), "learning_rate": (1e-7, 1.0)}

    def networks(self, latent_dim):
        """The flows' MADEs, built (so their weights exist), and the bijector chaining them."""
        networks = [tfb.AutoregressiveNetwork(params=2, event_shape=[latent_dim],
                                              hidden_units=list(self.config["hidden_units"]),
                                              activation="relu")
                    for _ in range(self.config["flows"])]
        for network in networks:
            network(tf.zeros([1, latent_dim]))
        reverse = list(range(latent_dim))[::-1]
        parts = []
        for i, network in enumerate(networks):
            if i:
                parts.append(tfb.Permute(reverse))
            parts.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=network))
        # tfb.Chain applies its last bijector first in the forward (noise -> code) direction.
        return networks, tfb.Chain(parts[::-1])

    def fit_arrays(self, codes, seed, log):
        tf.random.set_seed(seed)
        self.latent_dim = codes.shape[1]
        shift, scale = fitting.standardisation(codes)
        self.networks_, self.bijector = self.networks(self.latent_dim)
        self.shift, self.scale = tf.constant(shift, tf.float32), tf.constant(scale, tf.float32)
        import tf_keras

        optimizer = tf_keras.optimizers.Adam(self.config["learning_rate"])
        variables = [v for network in self.networks_ for v in network.trainable_variables]

        @tf.function(reduce_retracing=True)
        def step(batch):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(self.tf_log_prob(batch))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        train, held_out = fitting.split(codes, seed)
        log(f"maf: fitting {self.config['flows']} flows of MADE {self.config['hidden_units']} "
            f"to {len(train)} codes ({len(held_out)} held out), {self.config['steps']} steps")
        self.fitted_on.update(fitting.train(
            step, lambda c: -self.log_prob(c).mean(), train, held_out, self.config["steps"],
            self.config["batch_size"], seed, log, "maf"))
        arrays = {"shift": shift, "scale": scale}
        for i, network in enumerate(self.networks_):
            arrays.update({f"flow{i}_w{j}": w for j, w in enumerate(network.get_weights())})
        return arrays

    def build(self):
        if getattr(self, "networks_", None) is None:
            self.networks_, self.bijector = self.networks(self.latent_dim)
            for i, network in enumerate(self.networks_):
                network.set_weights([self.arrays[f"flow{i}_w{j}"]
                                     for j in range(len(network.get_weights()))])
        self.shift = tf.constant(self.arrays["shift"])
        self.scale = tf.constant(self.arrays["scale"])

    def tf_log_prob(self, codes):
        u = (codes - self.shift) / self.scale
        base = -0.5 * tf.reduce_sum(self.bijector.inverse(u) ** 2, axis=-1) - (
            0.5 * self.latent_dim * np.log(2 * np.pi))
        return (base + self.bijector.inverse_log_det_jacobian(u, event_ndims=1)
                - tf.reduce_sum(tf.math.log(self.scale)))

    def log_prob(self, codes):
        return self.tf_log_prob(tf.constant(np.asarray(codes, "float32"))).numpy().astype("float64")

    def draw(self, n, seed):
        return self.shift + self.scale * self.bijector.forward(self.noise(n, seed))

    def expected_shapes(self, config, latent_dim):
        networks, _ = self.networks(latent_dim)
        shapes = {"shift": (latent_dim,), "scale": (latent_dim,)}
        for i, network in enumerate(networks):
            shapes.update({f"flow{i}_w{j}": w.shape for j, w in enumerate(network.get_weights())})
        return shapes

    def check_arrays(self, path):
        from vae_zoo.errors import UserInputError

        if (self.arrays["scale"] <= 0).any():
            raise UserInputError(f"{path} is damaged: a scale is not positive")
