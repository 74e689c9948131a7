"""In-memory arrays -> `Data`: the split, shuffle and checks every array-backed source shares."""

import zipfile

import numpy as np
import tensorflow as tf

from vae_zoo.data.spec import Data
from vae_zoo.data.spec import DataSpec
from vae_zoo.errors import UserInputError

VALIDATION_FRACTION = 0.05


def check_pixels(x, origin):
    """`x` as `(N, H, W, C)` uint8, or float32 in [0, 1]; a clear error for anything else."""
    if x.ndim < 2:
        raise UserInputError(f"{origin}: expected an array of examples, got shape {x.shape}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim > 4:
        raise UserInputError(f"{origin}: images must be (N, H, W) or (N, H, W, C), got {x.shape}")
    if len(x) == 0:
        raise UserInputError(f"{origin}: the dataset is empty (0 images)")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise UserInputError(f"{origin}: pixels must be numbers, got dtype {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        raise UserInputError(
            f"{origin}: {int((~finite).sum())} pixel value(s) are NaN or infinite, first in image "
            f"{int(np.argwhere(~finite)[0][0])}; clean the data first")
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0 or hi > 1:
        raise UserInputError(
            f"{origin}: pixels must be uint8 (0..255) or floats in [0, 1]; got values in "
            f"[{lo:g}, {hi:g}]: convert to uint8 or divide by 255"
        )
    return x.astype(np.float32)


def _labels(y, n, origin):
    """Integer class labels aligned with n examples, or None when absent or unusable."""
    if y is None:
        return None
    y = np.asarray(y)
    if len(y) != n or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise UserInputError(f"{origin}: labels must be {n} non-negative integers, one per image")
    return y.astype(np.int64)


def from_arrays(arrays, config, seed, source):
    """`Data` from `x_train`/`x_test` (+ `y_train`/`y_test`) or one `x` (+ `y`) to split.

    Training examples are shuffled with `seed` before the validation split is held out, so a
    source sorted by label still gives a representative validation set.
    """
    rng = np.random.default_rng(seed)
    if "x_train" in arrays:
        train = check_pixels(arrays["x_train"], f"{source} x_train")
        test = check_pixels(arrays["x_test"], f"{source} x_test")
        if train.shape[1:] != test.shape[1:]:
            raise UserInputError(
                f"{source}: train images {train.shape[1:]} and test images {test.shape[1:]} differ"
            )
        y_train = _labels(arrays.get("y_train"), len(train), f"{source} y_train")
        y_test = _labels(arrays.get("y_test"), len(test), f"{source} y_test")
        order = rng.permutation(len(train))
        train, y_train = train[order], None if y_train is None else y_train[order]
    else:
        x = check_pixels(arrays["x"], source)
        y = _labels(arrays.get("y"), len(x), f"{source} y")
        order = rng.permutation(len(x))
        x, y = x[order], None if y is None else y[order]
        n_test = max(1, int(round(len(x) * config.test_fraction)))
        if len(x) - n_test < 2:
            raise UserInputError(f"{source}: {len(x)} images are too few to split")
        train, test = x[n_test:], x[:n_test]
        y_train, y_test = (None, None) if y is None else (y[n_test:], y[:n_test])
    if config.train_limit:
        train = train[: config.train_limit]
        y_train = None if y_train is None else y_train[: config.train_limit]
    if config.test_limit:
        test = test[: config.test_limit]
        y_test = None if y_test is None else y_test[: config.test_limit]
    n_val = max(1, int(round(len(train) * VALIDATION_FRACTION)))
    parts = {"train": (train[n_val:], None if y_train is None else y_train[n_val:]),
             "validation": (train[:n_val], None if y_train is None else y_train[:n_val]),
             "test": (test, y_test)}
    num_classes = None  # only labels on every split can condition a model; test labels still
    if y_train is not None and y_test is not None:  # colour the latent pictures
        num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    splits = {
        split: tf.data.Dataset.from_tensor_slices({"x": x} if y is None else {"x": x, "y": y})
        for split, (x, y) in parts.items()
    }
    return Data(
        splits=splits,
        spec=DataSpec(image_shape=output_shape(train.shape[1:], config.image_size),
                      num_classes=num_classes),
        sizes={split: len(x) for split, (x, _) in parts.items()},
        source=source,
    )


def output_shape(shape, image_size):
    """The image shape after the pipeline's optional resize to `image_size`."""
    if image_size is None or len(shape) != 3:
        return tuple(int(d) for d in shape)
    return (int(image_size[0]), int(image_size[1]), int(shape[2]))


def load_npz(path):
    """The arrays of an .npz file; a truncated or corrupt file is a UserInputError."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserInputError(f"cannot read {path}: {e or type(e).__name__} (truncated or not "
                             "an .npz file?)") from None
