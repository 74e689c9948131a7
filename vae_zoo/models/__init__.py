"""VAE models. Each is a `keras.Model` registered for `.keras` serialisation."""

from vae_zoo.models.beta_vae import BetaVAE
from vae_zoo.models.vae import VAE

MODEL_CLASSES = {cls.__name__: cls for cls in (VAE, BetaVAE)}
