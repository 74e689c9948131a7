"""Dataset sources: the embedded MNIST sample, local IDX files, TFDS, image folders and array files.

`load_image_data` is the one entry point: it turns `DataConfig.dataset` into train/validation/test
`tf.data.Dataset`s of single images (uint8 or float in [0, 1]) and says where they came from.
"""

import dataclasses
import socket
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.data.idx import read_idx
from vae_zoo.errors import UserInputError

EMBEDDED_MNIST = Path(__file__).resolve().parent / "mnist_sample.npz"
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Where TFDS downloads from; a 2 s connect tells us fast whether a download could work, instead of
# waiting minutes for TFDS's own retries to give up.
TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)
VALIDATION_FRACTION = 0.05


@dataclasses.dataclass
class ImageData:
    """Three splits of single images and what they are.

    `train`/`validation`/`test` are `tf.data.Dataset`s of images of `image_shape`; `validation` is
    held out of the training split (model selection never looks at `test`). `test_labels` colour
    the latent-space pictures.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    image_shape: tuple
    sizes: dict
    source: str
    test_labels: tf.data.Dataset | None = None  # class labels aligned with `test`, where known


def load_image_data(config, seed=0):
    """Resolves `config.dataset` (a `DataConfig`) to an `ImageData`."""
    name = config.dataset
    if name == "mnist_sample":
        return _from_arrays(_load_npz(EMBEDDED_MNIST), config, seed, "embedded MNIST sample")
    if name == "mnist":
        if _tfds_usable("mnist", config.data_dir):
            return _from_tfds("mnist", config, seed)
        return _from_arrays(
            _load_npz(EMBEDDED_MNIST), config, seed,
            "embedded MNIST sample (TFDS mnist is not prepared here and cannot be downloaded)",
        )
    if name == "fashion_mnist":
        folder = _find_idx_folder(config.data_dir)
        if folder is not None:
            return _from_arrays(_load_idx_folder(folder), config, seed, f"Fashion-MNIST IDX files in {folder}")
        if _tfds_usable("fashion_mnist", config.data_dir):
            return _from_tfds("fashion_mnist", config, seed)
        raise UserInputError(
            "fashion_mnist not found: install it with `apt-get install dataset-fashion-mnist`, "
            "or pass --data-dir with the four IDX files, or run where TFDS can download it"
        )
    path = Path(name).expanduser()
    if path.suffix in (".npz", ".npy") or path.is_dir() or "/" in name or path.exists():
        if not path.exists():
            raise UserInputError(f"dataset path {name} does not exist")
        if path.is_dir():
            return _from_arrays(_load_folder(path, config.image_size), config, seed, f"image folder {path}")
        if path.suffix not in (".npz", ".npy"):
            raise UserInputError(f"dataset file {name} must be a .npz or .npy array file")
        return _from_arrays(_load_array_file(path), config, seed, f"array file {path}")
    return _from_tfds_name(name, config, seed)


# --- In-memory arrays (embedded sample, IDX, folders, array files) ------------------------------


def _load_npz(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _find_idx_folder(data_dir):
    candidates = [Path(data_dir).expanduser()] if data_dir else list(FASHION_MNIST_DIRS)
    for folder in candidates:
        if all(_idx_path(folder, stem) for stem in FASHION_MNIST_FILES.values()):
            return folder
    if data_dir:
        raise UserInputError(
            f"--data-dir {data_dir} does not hold the IDX files "
            f"{', '.join(FASHION_MNIST_FILES.values())} (optionally .gz)"
        )
    return None


def _idx_path(folder, stem):
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_folder(folder):
    return {key: read_idx(_idx_path(folder, stem)) for key, stem in FASHION_MNIST_FILES.items()}


def _load_array_file(path):
    try:
        if path.suffix == ".npy":
            return {"x": np.load(path, allow_pickle=False)}
        arrays = _load_npz(path)
    except (ValueError, OSError) as e:
        raise UserInputError(f"cannot read {path}: {e}") from None
    for keys in (("x_train", "x_test"), ("x",), ("images",)):
        if all(k in arrays for k in keys):
            found = {"x" if k == "images" else k: arrays[k] for k in keys}
            for label_key in ("y_test", "y", "labels"):
                if label_key in arrays:
                    found["y_test" if label_key == "y_test" else "y"] = arrays[label_key]
            return found
    if len(arrays) == 1:
        return {"x": next(iter(arrays.values()))}
    raise UserInputError(
        f"{path} holds arrays {sorted(arrays)}; expected x_train and x_test, or a single array x"
    )


def _load_folder(folder, image_size):
    from PIL import Image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    images = []
    for path in files:
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB") if image.mode not in ("L", "RGB") else image.copy())
        except OSError as e:
            raise UserInputError(f"cannot read image {path}: {e}") from None
    mode = "RGB" if any(im.mode == "RGB" for im in images) else "L"
    sizes = {im.size for im in images}
    if image_size is None and len(sizes) > 1:
        (w1, h1), (w2, h2) = sorted(sizes)[:2]
        raise UserInputError(
            f"images in {folder} have different sizes ({h1}x{w1}, {h2}x{w2}, ...); "
            f"choose one with --set data.image_size=[{h1},{w1}]"
        )
    target = None if image_size is None else (image_size[1], image_size[0])
    arrays = []
    for im in images:
        im = im.convert(mode)
        if target is not None and im.size != target:
            im = im.resize(target, Image.BILINEAR)
        arrays.append(np.asarray(im, dtype=np.uint8))
    return {"x": np.stack(arrays)}


def _check_pixels(x, origin):
    if x.ndim < 2:
        raise UserInputError(f"{origin}: expected an array of examples, got shape {x.shape}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim > 4:
        raise UserInputError(f"{origin}: images must be (N, H, W) or (N, H, W, C), got {x.shape}")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        raise UserInputError(f"{origin}: pixels must be numbers, got dtype {x.dtype}")
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0 or hi > 1:
        raise UserInputError(
            f"{origin}: pixels must be uint8 (0..255) or floats in [0, 1]; got values in "
            f"[{lo:g}, {hi:g}]: convert to uint8 or divide by 255"
        )
    return x.astype(np.float32)


def _from_arrays(arrays, config, seed, source):
    rng = np.random.default_rng(seed)
    labels = None
    if "x_train" in arrays:
        train = _check_pixels(arrays["x_train"], f"{source} x_train")
        test = _check_pixels(arrays["x_test"], f"{source} x_test")
        if train.shape[1:] != test.shape[1:]:
            raise UserInputError(
                f"{source}: train images {train.shape[1:]} and test images {test.shape[1:]} differ"
            )
        train = train[rng.permutation(len(train))]
        labels = arrays.get("y_test")
    else:
        x = _check_pixels(arrays["x"], source)
        order = rng.permutation(len(x))
        x = x[order]
        n_test = max(1, int(round(len(x) * config.test_fraction)))
        if len(x) - n_test < 2:
            raise UserInputError(f"{source}: {len(x)} images are too few to split")
        train, test = x[n_test:], x[:n_test]
        if "y" in arrays and len(arrays["y"]) == len(order):
            labels = np.asarray(arrays["y"])[order][:n_test]
    if config.train_limit:
        train = train[: config.train_limit]
    if config.test_limit:
        test = test[: config.test_limit]
    if labels is not None and len(labels) >= len(test):
        labels = tf.data.Dataset.from_tensor_slices(np.asarray(labels)[: len(test)])
    else:
        labels = None
    n_val = max(1, int(round(len(train) * VALIDATION_FRACTION)))
    train, validation = train[n_val:], train[:n_val]
    return ImageData(
        train=tf.data.Dataset.from_tensor_slices(train),
        validation=tf.data.Dataset.from_tensor_slices(validation),
        test=tf.data.Dataset.from_tensor_slices(test),
        image_shape=_output_shape(train.shape[1:], config.image_size),
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
        source=source,
        test_labels=labels,
    )


def _output_shape(shape, image_size):
    if image_size is None or len(shape) != 3:
        return tuple(int(d) for d in shape)
    return (int(image_size[0]), int(image_size[1]), int(shape[2]))


# --- TFDS -------------------------------------------------------------------------------------


def _tfds_builder(name, data_dir):
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir)


def _tfds_usable(name, data_dir):
    """True when TFDS has the dataset prepared locally or can download it now."""
    try:
        if _tfds_builder(name, data_dir).is_prepared():
            return True
    except Exception:  # an unprepared or unknown builder: fall through to the network check
        pass
    return _download_reachable()


def _download_reachable(timeout=2.0):
    try:
        with socket.create_connection(TFDS_DOWNLOAD_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def _from_tfds_name(name, config, seed):
    import tensorflow_datasets as tfds

    if name not in tfds.list_builders():
        raise UserInputError(
            f"unknown dataset {name!r}: not mnist, mnist_sample, fashion_mnist, a TFDS dataset "
            "name, an image folder or a .npz/.npy file"
        )
    if not _tfds_usable(name, config.data_dir):
        raise UserInputError(
            f"TFDS dataset {name!r} is not prepared in the TFDS data dir and cannot be downloaded "
            "(no network); prepare it elsewhere and pass --data-dir, or use a local dataset"
        )
    return _from_tfds(name, config, seed)


def _from_tfds(name, config, seed):
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, config.data_dir)
    builder.download_and_prepare()
    features = builder.info.features
    if "image" not in features:
        raise UserInputError(f"TFDS dataset {name!r} has no 'image' feature")
    shape = tuple(features["image"].shape)
    if None in shape and config.image_size is None:
        raise UserInputError(
            f"TFDS dataset {name!r} has images of varying size {shape}; "
            "choose one with --set data.image_size=[64,64]"
        )
    # Percent slices need no split sizes, which TFDS only knows for prepared datasets.
    val_pct = round(VALIDATION_FRACTION * 100)
    if any(s in builder.info.splits for s in ("test", "validation")) or not builder.info.splits:
        test_name = "validation" if "validation" in builder.info.splits and "test" not in builder.info.splits else "test"
        splits = {"train": f"train[{val_pct}%:]", "validation": f"train[:{val_pct}%]", "test": test_name}
    else:  # hold the end of the training split out as a test set
        test_pct = 100 - round(config.test_fraction * 100)
        splits = {"train": f"train[{val_pct}%:{test_pct}%]", "validation": f"train[:{val_pct}%]",
                  "test": f"train[{test_pct}%:]"}
    limits = {"train": config.train_limit, "test": config.test_limit}

    def feature(split, key="image"):
        ds = builder.as_dataset(split=splits[split], shuffle_files=False)
        ds = ds.map(lambda example: example[key])
        return ds.take(limits[split]) if limits.get(split) else ds

    datasets = {split: feature(split) for split in splits}
    return ImageData(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        image_shape=_output_shape(shape, config.image_size),
        sizes={split: int(ds.cardinality()) for split, ds in datasets.items()},
        source=f"TFDS {name}",
        test_labels=feature("test", "label") if "label" in features else None,
    )
