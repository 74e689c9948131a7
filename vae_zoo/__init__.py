"""vae_zoo: variational autoencoders for Keras 3 and TensorFlow.

Importing the package registers every model and layer with Keras, so that
`keras.models.load_model("runs/conv_vae/model.keras")` works after `import vae_zoo`.
`vae_zoo.from_preset("conv_vae_mnist")` is a trained model (`vae_zoo.list_presets()`).
"""

from vae_zoo.config import RunConfig
from vae_zoo.config import available_models
from vae_zoo.config import load_zoo_config
from vae_zoo.data import DataSpec
from vae_zoo.errors import UserInputError
from vae_zoo.models import VAE
from vae_zoo.models import BetaVAE
from vae_zoo.models import ZooModel
from vae_zoo.presets import from_preset
from vae_zoo.presets import list_presets
from vae_zoo.presets import save_preset
from vae_zoo.run_folder import RunFolder

__version__ = "0.1.0"
