"""One preset folder: its files, read and checked against the model (the weights' format:
`vae_zoo.weights_file`)."""

import json
from pathlib import Path

import numpy as np
import yaml

from vae_zoo.config.schema import load_yaml
from vae_zoo.errors import UserInputError
from vae_zoo.weights_file import read_weights_into


class PresetFolder:
    """Reads (and names the files of) one preset folder.

    Args:
        path: str or Path. The folder.
        name: str. What the user called it (a preset name, a path or an `hf://` id), for messages.
    """

    CARD = "card.yaml"
    CONFIG = "config.yaml"
    MODEL = "model.json"
    WEIGHTS = "weights.npz"
    CHECK_IMAGES = "check_images.npz"
    REQUIRED = (CARD, MODEL, WEIGHTS)

    def __init__(self, path, name=None):
        self.path = Path(path)
        self.name = name or str(path)

    def __str__(self):
        return self.name

    @property
    def short_name(self):
        """The preset's own name: `conv_vae_mnist`, a folder's name, `name` of `hf://user/name`."""
        return Path(self.name.split("@")[0].rstrip("/\\")).name

    def validate(self):
        """Refuses a folder that is not a preset, naming what is missing."""
        missing = [f for f in self.REQUIRED if not (self.path / f).is_file()]
        if not self.path.is_dir() or missing:
            raise UserInputError(
                f"{self.name} is not a vae_zoo preset (no {', '.join(missing) or 'folder'}); "
                f"a preset folder holds {', '.join(self.REQUIRED)} (written by save_preset)")
        return self

    # --- Reading ------------------------------------------------------------------------------

    def read_card(self):
        with open(self.path / self.CARD) as f:
            return load_yaml(f, source=f"{self.name}/{self.CARD}") or {}

    def read_config(self):
        """The run config dict it was trained with, or None (a preset saved from a bare model)."""
        path = self.path / self.CONFIG
        if not path.is_file():
            return None
        with open(path) as f:
            return load_yaml(f, source=f"{self.name}/{self.CONFIG}")

    def read_check(self):
        """`{"x": float32 images in [0, 1], maybe "y"}` of the card's check, or None."""
        path = self.path / self.CHECK_IMAGES
        if not path.is_file():
            return None
        with np.load(path) as arrays:
            check = {key: arrays[key] for key in arrays.files}
        if check["x"].dtype == np.uint8:
            check["x"] = check["x"].astype("float32") / 255.0
        return check

    def load_model(self):
        """The model of `model.json` with the stored weights, compiled with its optimizers."""
        import keras

        import vae_zoo  # noqa: F401  (registers the model classes with Keras)

        self.validate()
        try:
            model = keras.saving.deserialize_keras_object(
                json.loads((self.path / self.MODEL).read_text()))
        except UserInputError:
            raise
        except Exception as e:
            raise UserInputError(f"{self.name}/{self.MODEL} does not describe a vae_zoo model "
                                 f"({type(e).__name__}: {str(e).splitlines()[0]})") from None
        self.load_weights_into(model)
        config = self.read_config() or {}
        model.seed = int(config.get("train", {}).get("seed", 0))
        model.compile(**model.make_optimizers(config.get("train", {}).get("learning_rate", 1e-3)))
        return model

    def load_weights_into(self, model, image_shape=None):
        """Assigns the stored weights to `model`; one line when they do not fit it.

        `image_shape`: the shape of the images the model will see (fine-tuning on new data),
        refused unless the preset was trained on that shape.
        """
        self.validate()
        trained_on = self.read_card().get("model", {}).get("image_shape")
        if image_shape is not None and trained_on and tuple(trained_on) != tuple(image_shape):
            raise UserInputError(
                f"preset {self.name} takes images of shape {tuple(trained_on)}, the data has "
                f"{tuple(image_shape)}: fine-tune it on data of its shape (or set "
                "data.image_size)")
        read_weights_into(model, self.path / self.WEIGHTS, f"{self.name}/{self.WEIGHTS}")


def write_yaml(path, content):
    Path(path).write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
