"""A `.npz` or `.npy` file of images (and optionally labels)."""

import numpy as np

from vae_zoo.data.sources.arrays import from_arrays
from vae_zoo.data.sources.arrays import load_npz
from vae_zoo.errors import UserInputError


def load(path, config, seed):
    if path.suffix not in (".npz", ".npy"):
        raise UserInputError(f"dataset file {path} must be a .npz or .npy array file")
    return from_arrays(_read(path), config, seed, f"array file {path}")


def _read(path):
    if path.suffix == ".npy":
        try:
            return {"x": np.load(path, allow_pickle=False)}
        except (ValueError, OSError, EOFError) as e:
            raise UserInputError(f"cannot read {path}: {e} (truncated or not a .npy file?)") from None
    arrays = load_npz(path)
    for keys in (("x_train", "x_test"), ("x",), ("images",)):
        if all(k in arrays for k in keys):
            found = {"x" if k == "images" else k: arrays[k] for k in keys}
            if "x_train" in found:
                found.update({k: arrays[k] for k in ("y_train", "y_test") if k in arrays})
            elif "y" in arrays or "labels" in arrays:
                found["y"] = arrays["y"] if "y" in arrays else arrays["labels"]
            return found
    if len(arrays) == 1:
        return {"x": next(iter(arrays.values()))}
    raise UserInputError(
        f"{path} holds arrays {sorted(arrays)}; expected x_train and x_test, or a single array x"
    )
