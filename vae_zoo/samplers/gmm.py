"""`gmm`: a mixture of full-covariance Gaussians fitted by scikit-learn's `GaussianMixture`
(EM; pythae's `GaussianMixtureSampler`, 10 components by default).

The fitted mixture is stored as its arrays (weights, means, covariance Cholesky factors), never
as a pickled estimator, and drawn in TensorFlow: a component by the Gumbel-max trick on uniform
noise (argmax of log w_k + Gumbel), then mean_k + L_k eps, with one-hot matrix products instead
of gathers, so the draw converts to TFLite builtins.
"""

import numpy as np
import tensorflow as tf

from vae_zoo.errors import UserInputError
from vae_zoo.samplers.base import Sampler
from vae_zoo.samplers.base import register_sampler
from vae_zoo.samplers.gaussian import check_cholesky
from vae_zoo.samplers.gaussian import cholesky
from vae_zoo.samplers.gaussian import gaussian_log_prob


@register_sampler("gmm")
class GMMSampler(Sampler):
    """Args (options):
        components: int. Mixture components (pythae's default, 10).
        max_iter: int. EM iterations at most (scikit-learn's default, 100).
    """

    options = {"components": 10, "max_iter": 100}
    limits = {"components": (1, 1000), "max_iter": (1, 100_000)}

    def fit_arrays(self, codes, seed, log):
        from sklearn.mixture import GaussianMixture

        components = self.config["components"]
        if components > len(codes):
            raise UserInputError(f"gmm: {components} components need at least as many codes "
                                 f"({len(codes)} given)")
        mixture = GaussianMixture(n_components=components, covariance_type="full",
                                  max_iter=self.config["max_iter"], random_state=seed)
        mixture.fit(codes)
        if not mixture.converged_:
            log(f"note: gmm's EM did not converge in {self.config['max_iter']} iterations")
        self.fitted_on["em_iterations"] = int(mixture.n_iter_)
        return {"weights": mixture.weights_, "means": mixture.means_,
                "cholesky": np.stack([cholesky(c) for c in mixture.covariances_])}

    def draw(self, n, seed):
        weights, means, factors = (self.tensors[k] for k in ("weights", "means", "cholesky"))
        k, d = self.config["components"], self.latent_dim
        gumbel = -tf.math.log(-tf.math.log(self.gumbel_uniform(n, seed, k)))
        one_hot = tf.one_hot(tf.argmax(tf.math.log(weights) + gumbel, axis=-1), k)
        mean = tf.matmul(one_hot, means)
        factor = tf.reshape(tf.matmul(one_hot, tf.reshape(factors, [k, d * d])), [-1, d, d])
        eps = self.noise(n, seed)
        return mean + tf.reduce_sum(factor * eps[:, None, :], axis=-1)

    def gumbel_uniform(self, n, seed, k):
        """Uniform noise `(n, k)` in (0, 1), away from 0 and 1 so that the Gumbel is finite."""
        if seed is None:
            u = tf.random.uniform([n, k])
        else:
            u = tf.random.stateless_uniform([n, k], seed=[int(seed), 1])
        return tf.clip_by_value(u, 1e-7, 1 - 1e-7)

    def log_prob(self, codes):
        weights = self.arrays["weights"].astype("float64")
        per_component = np.stack([
            np.log(w) + gaussian_log_prob(codes, m.astype("float64"), f.astype("float64"))
            for w, m, f in zip(weights, self.arrays["means"], self.arrays["cholesky"])])
        top = per_component.max(axis=0)
        return top + np.log(np.exp(per_component - top).sum(axis=0))

    def expected_shapes(self, config, latent_dim):
        k = config["components"]
        return {"weights": (k,), "means": (k, latent_dim), "cholesky": (k, latent_dim, latent_dim)}

    def check_arrays(self, path):
        weights = self.arrays["weights"]
        if (weights <= 0).any() or abs(float(weights.sum()) - 1) > 1e-4:
            raise UserInputError(f"{path} is damaged: the mixture weights are not positive "
                                 "summing to 1")
        check_cholesky(self.arrays["cholesky"], path, "cholesky")
