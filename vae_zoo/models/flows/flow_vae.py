import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.distributions import diagonal_gaussian
from vae_zoo.models.vae.vae import VAE

tfd = tfp.distributions


class FlowVAE(VAE):
    """A VAE whose posterior is a diagonal Gaussian pushed through an invertible map (a
    normalizing flow, Rezende & Mohamed, 2015): z_0 ~ q_0(z|x) = N(mu(x), sigma^2(x)),
    z = z_K = f_K(...f_1(z_0)), and

        log q(z_K|x) = log q_0(z_0|x) - sum_k log |det df_k/dz_{k-1}|

    The flow's parameters depend on x: the encoder's features give mu, log sigma^2 and a vector
    of flow parameters (`flow_parameters`: the flows' own parameters, or a context the flow's
    networks read), so one network amortises every example's flow, as in both papers. A family
    says how many parameters it needs (`flow_parameter_count`) and what map they define
    (`bijector`, a TFP bijector on the last axis that broadcasts over leading axes, so that k
    draws per example share their example's parameters).

    Per example, with z_0 drawn once by reparameterisation (the `Sampling` layer, so training
    noise repeats by step and replica as for every VAE):

        loss = -log p(x|z_K) + w(t) * beta * kl,   kl = log q_0(z_0|x) - log_det - log p(z_K)

    kl is the one-draw Monte Carlo estimate of KL(q(z_K|x) || N(0, I)) (no closed form), so
    `elbo = -(reconstruction + kl)` is the ELBO at that draw, unbiased. `log_det` (the flow's
    log-det-Jacobian at the draw) is tracked: near 0 the flow does nothing. The importance
    weights of the IW NLL are log p(x|z_K) + log p(z_K) - log q(z_K|x) from the same formula at
    k draws.

    The code (`representation`) is the flow applied to the base mean, f(mu(x)), deterministic:
    the posterior's mean has no closed form. `posterior(x)` is the TFP `TransformedDistribution`
    of q_0 by the flow; the `encode` endpoint returns the base's `z_mean`, `z_log_var`, the code
    and one draw z = f(z_0). `decode`, `sample` (z ~ N(0, I)) and `reconstruct` are the VAE's.

    Args:
        **kwargs: the arguments of `VAE`.
    """

    metric_names = ("reconstruction", "kl", "elbo", "log_det")

    def flow_parameter_count(self):
        """How many numbers per example the encoder gives the flow."""
        raise NotImplementedError

    def bijector(self, parameters):
        """The flow for parameters `(..., flow_parameter_count)`, as a TFP bijector z_0 -> z_K
        on vectors (forward and its log-det-Jacobian; `event_ndims=1`)."""
        raise NotImplementedError

    def posterior_head(self, features, latent_dim):
        """The VAE's head and a third, float32 one: the flow's parameters from the same
        features (Dense, initialised small so that training starts near the Gaussian VAE)."""
        z_mean, z_log_var = super().posterior_head(features, latent_dim)
        flow_head = keras.layers.Dense(
            self.flow_parameter_count(), dtype="float32", name="flow_parameters",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        return [z_mean, z_log_var, flow_head(features)]

    def flow(self, z0, parameters):
        """`(z_K, log_det)`: the flow applied to draws `z0 (..., latent)` and the sum of its
        log |det Jacobian| `(...)`."""
        bijector = self.bijector(parameters)
        return bijector.forward(z0), bijector.forward_log_det_jacobian(z0, event_ndims=1)

    def draw(self, z_mean, z_log_var, parameters, seed=None):
        """Draws `(..., batch, latent)` as z_mean's shape (k draws: z_mean repeated k times) and
        scores them: `{"z0", "z", "log_det", "log_q"}`, log_q = log q(z_K|x)."""
        z0 = self.sampling((z_mean, z_log_var), seed=seed)
        z, log_det = self.flow(z0, parameters)  # the parameters broadcast over k draws
        log_q = diagonal_gaussian(z_mean, z_log_var).log_prob(z0) - log_det
        return {"z0": z0, "z": z, "log_det": log_det, "log_q": log_q}

    def call(self, inputs, training=None):
        x = self.as_batch(inputs)["x"]
        z_mean, z_log_var, parameters = self.encoder(x, training=training)
        draws = self.draw(z_mean, z_log_var, parameters,
                          seed=self.noise_seed() if training else None)
        return {"z_mean": z_mean, "z_log_var": z_log_var, **draws,
                "x_params": self.decoder(draws["z"], training=training)}

    def loss_terms(self, batch, outputs):
        return {**super().loss_terms(batch, outputs), "log_det": outputs["log_det"]}

    def kl_divergence(self, outputs):
        """log q(z_K|x) - log p(z_K) at the drawn z_K: KL's one-draw estimate."""
        return outputs["log_q"] - self.prior().log_prob(outputs["z"])

    # --- The probability interface ----------------------------------------------------------

    def posterior(self, x):
        z_mean, z_log_var, parameters = self.encoder(x, training=False)
        return tfd.TransformedDistribution(diagonal_gaussian(z_mean, z_log_var),
                                           self.bijector(parameters))

    def representation(self, x):
        z_mean, _, parameters = self.encoder(x, training=False)
        return self.flow(z_mean, parameters)[0]

    def log_importance_weights(self, x, num_samples):
        x = tf.convert_to_tensor(x, tf.float32)
        z_mean, z_log_var, parameters = self.encoder(x, training=False)
        draws = self.draw(tf.repeat(z_mean[None], num_samples, axis=0),
                          tf.repeat(z_log_var[None], num_samples, axis=0), parameters)
        z = draws["z"]  # (k, batch, latent)
        return self.draws_log_likelihood(x, z) + self.prior().log_prob(z) - draws["log_q"]

    # --- Serving ----------------------------------------------------------------------------

    def serving_endpoints(self):
        endpoints = super().serving_endpoints()

        def encode(x):
            z_mean, z_log_var, parameters = self.encoder(x, training=False)
            z0 = self.sampling((z_mean, z_log_var))
            return {"z_mean": z_mean, "z_log_var": z_log_var,
                    "code": self.flow(z_mean, parameters)[0], "z": self.flow(z0, parameters)[0]}

        return {**endpoints, "encode": (encode, endpoints["encode"][1])}
