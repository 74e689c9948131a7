"""Arrays and stores -> `Data`: the split, shuffle and checks every source of images shares."""

import zipfile

import numpy as np

from vae_zoo.data.spec import Data
from vae_zoo.data.spec import DataSpec
from vae_zoo.data.store import ArrayStore
from vae_zoo.data.store import Split
from vae_zoo.data.store import fit_to_budget
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
    """`Data` from in-memory `x_train`/`x_test` (+ `y_train`/`y_test`) or one `x` (+ `y`)."""
    if "x_train" in arrays:
        train = check_pixels(arrays["x_train"], f"{source} x_train")
        test = check_pixels(arrays["x_test"], f"{source} x_test")
        stores = [ArrayStore(_with_labels(train, arrays.get("y_train"), f"{source} y_train")),
                  ArrayStore(_with_labels(test, arrays.get("y_test"), f"{source} y_test"))]
    else:
        x = check_pixels(arrays["x"], source)
        stores = [ArrayStore(_with_labels(x, arrays.get("y"), f"{source} y")), None]
    return from_stores(*stores, config, seed, source)


def _with_labels(x, y, origin):
    y = _labels(y, len(x), origin)
    return {"x": x} if y is None else {"x": x, "y": y}


def from_stores(train, test, config, seed, source, notes=(), num_classes=None):
    """`Data` from a store of training examples and one of test examples, or one store (`test`
    None) of which `data.test_fraction` is held out as the test split.

    Only indices are shuffled and split: training examples are permuted with `seed` before the
    validation split is held out, so a source sorted by label still gives a representative
    validation set. Stores on disk are loaded into memory when they fit `data.memory_budget_mb`.
    `num_classes` is the labels' number of classes when the source knows it (else the largest
    label + 1).
    """
    rng = np.random.default_rng(seed)
    if test is not None:
        if train.spec["x"][1] != test.spec["x"][1]:
            raise UserInputError(f"{source}: train images {train.spec['x'][1]} and test images "
                                 f"{test.spec['x'][1]} differ")
        train_ids, test_ids = rng.permutation(train.size), np.arange(test.size)
    else:
        order = rng.permutation(train.size)
        n_test = max(1, int(round(train.size * config.test_fraction)))
        if train.size - n_test < 2:
            raise UserInputError(f"{source}: {train.size} images are too few to split")
        test, train_ids, test_ids = train, order[n_test:], order[:n_test]
    if config.train_limit:
        train_ids = train_ids[: config.train_limit]
    if config.test_limit:
        test_ids = test_ids[: config.test_limit]
    train, test, budget_notes = fit_to_budget(train, test, config.memory_budget_mb)
    n_val = max(1, int(round(len(train_ids) * VALIDATION_FRACTION)))
    splits = {"train": Split(train, train_ids[n_val:]), "validation": Split(train, train_ids[:n_val]),
              "test": Split(test, test_ids)}
    # Only labels on every split can condition a model; test labels still colour the latent
    # pictures.
    labels = [store.column("y") for store in (train, test)]
    if any(y is None for y in labels):
        num_classes = None
    elif num_classes is None:
        num_classes = int(max(y.max(initial=0) for y in labels)) + 1
    return Data(
        splits=splits,
        spec=DataSpec(image_shape=output_shape(train.spec["x"][1], config.image_size),
                      num_classes=num_classes),
        sizes={split: len(ids) for split, ids in splits.items()},
        source=source,
        notes=(*notes, *budget_notes),
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
