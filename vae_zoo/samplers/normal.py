"""`normal`: one full-covariance Gaussian fitted to the codes (pythae's `NormalSampler` fits a
diagonal one; the full covariance keeps the correlations the encoder put between latents)."""

import numpy as np

from vae_zoo.samplers.base import Sampler
from vae_zoo.samplers.base import register_sampler
from vae_zoo.samplers.gaussian import affine_draw
from vae_zoo.samplers.gaussian import check_cholesky
from vae_zoo.samplers.gaussian import cholesky
from vae_zoo.samplers.gaussian import gaussian_log_prob


@register_sampler("normal")
class NormalSampler(Sampler):
    """N(mean, cov) of the codes: the maximum-likelihood fit; drawn as mean + L eps."""

    options = {}

    def fit_arrays(self, codes, seed, log):
        mean = codes.mean(axis=0)
        covariance = np.cov(codes, rowvar=False, bias=True).reshape(len(mean), len(mean))
        return {"mean": mean, "cholesky": cholesky(covariance)}

    def draw(self, n, seed):
        return affine_draw(self.tensors["mean"], self.tensors["cholesky"], self.noise(n, seed))

    def log_prob(self, codes):
        return gaussian_log_prob(codes, self.arrays["mean"].astype("float64"),
                                 self.arrays["cholesky"].astype("float64"))

    def expected_shapes(self, config, latent_dim):
        return {"mean": (latent_dim,), "cholesky": (latent_dim, latent_dim)}

    def check_arrays(self, path):
        check_cholesky(self.arrays["cholesky"], path, "cholesky")
