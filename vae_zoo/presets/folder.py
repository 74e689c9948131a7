"""One preset folder: its files, and how weights are stored (float16) and checked against the model."""

import json
from pathlib import Path

import numpy as np
import yaml

from vae_zoo.config.schema import load_yaml
from vae_zoo.errors import UserInputError


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
        try:
            with np.load(self.path / self.WEIGHTS) as stored:
                names = list(stored["names"])
                arrays = [stored[f"w{i}"] for i in range(len(names))]
        except Exception as e:  # a truncated zip, a missing array, not an .npz at all
            raise UserInputError(f"cannot read {self.name}/{self.WEIGHTS} ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}): not weights "
                                 "written by save_preset, or damaged") from None
        variables = model.weights
        if len(arrays) != len(variables):
            raise UserInputError(
                f"{self.name}: {self.WEIGHTS} holds {len(arrays)} weights but its model has "
                f"{len(variables)}: the weights do not match the model's config")
        for name, array, variable in zip(names, arrays, variables):
            if tuple(array.shape) != tuple(variable.shape):
                raise UserInputError(
                    f"{self.name}: weight {name} has shape {tuple(array.shape)} but the model's "
                    f"{variable.path} has {tuple(variable.shape)}: the weights do not match the "
                    "model's config")
        for array, variable in zip(arrays, variables):
            variable.assign(array.astype(variable.dtype))


def write_weights(model, path):
    """Writes `model.weights` to `path` (.npz); float weights as float16. Returns the rounded model
    weights (what loading gives back), in the model's dtypes."""
    arrays = [np.asarray(w) for w in model.get_weights()]
    stored = [a.astype(np.float16) if np.issubdtype(a.dtype, np.floating) else a for a in arrays]
    with open(path, "wb") as f:
        np.savez_compressed(f, names=np.array([v.path for v in model.weights]),
                            **{f"w{i}": a for i, a in enumerate(stored)})
    return [s.astype(a.dtype) for s, a in zip(stored, arrays)]


def write_yaml(path, content):
    Path(path).write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
