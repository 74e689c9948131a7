"""Ex-post samplers: densities fitted to a trained model's codes, for better samples and for
exported `sample` signatures that draw from them (issue #24).

    normal      one full-covariance Gaussian
    gmm         scikit-learn's GaussianMixture, stored as arrays and drawn in TensorFlow
    maf         a masked autoregressive flow (TFP)
    two_stage   a second small VAE on the codes (Dai & Wipf, 2019)

Each is a module registering a `Sampler` subclass by name (`SAMPLERS`), like models and metrics.
`python -m vae_zoo.sample RUN --sampler NAME` fits one and stores it in `RUN/samplers/NAME/`;
`python -m export RUN --sampler NAME` bakes it into the SavedModel's and TFLite's `sample`.
"""

from vae_zoo.registry import import_submodules
from vae_zoo.samplers.base import SAMPLERS
from vae_zoo.samplers.base import Sampler
from vae_zoo.samplers.base import load_sampler
from vae_zoo.samplers.base import register_sampler

import_submodules(__name__, __path__)

__all__ = ["SAMPLERS", "Sampler", "load_sampler", "register_sampler"]
