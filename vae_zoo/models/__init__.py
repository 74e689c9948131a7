"""Zoo models: `keras.Model`s on one interface (`ZooModel`), one folder per model family.

A family registers its classes with `@register_model`; every subpackage here is imported, so a
new family is a new folder.
"""

from vae_zoo.models.base import MODELS
from vae_zoo.models.base import Capabilities
from vae_zoo.models.base import ZooModel
from vae_zoo.models.base import register_model
from vae_zoo.registry import import_submodules

import_submodules(__name__, __path__)

from vae_zoo.models.vae import VAE  # noqa: E402
from vae_zoo.models.vae import BetaVAE  # noqa: E402
from vae_zoo.models.vae import IWAE  # noqa: E402
from vae_zoo.models.vamp import VampVAE  # noqa: E402
from vae_zoo.models.cvae import CVAE  # noqa: E402
from vae_zoo.models.vq import VQVAE  # noqa: E402
from vae_zoo.models.factor import FactorVAE  # noqa: E402
from vae_zoo.models.tcvae import BetaTCVAE  # noqa: E402
from vae_zoo.models.dip import DIPVAE  # noqa: E402
from vae_zoo.models.hvae import HVAE  # noqa: E402
from vae_zoo.models.ae import AE  # noqa: E402
from vae_zoo.models.ae import RAE  # noqa: E402
from vae_zoo.models.mmd import WAE  # noqa: E402
from vae_zoo.models.mmd import InfoVAE  # noqa: E402
from vae_zoo.models.aae import AdversarialAE  # noqa: E402
from vae_zoo.models.perceptual import MSSSIMVAE  # noqa: E402
from vae_zoo.models.hyperspherical import SVAE  # noqa: E402
from vae_zoo.models.vaegan import VAEGAN  # noqa: E402
