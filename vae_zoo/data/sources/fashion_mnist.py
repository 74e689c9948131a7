"""Fashion-MNIST from its original IDX files (Debian's dataset-fashion-mnist, or --data-dir), else
TFDS."""

from pathlib import Path

import numpy as np

from vae_zoo.data import prepared
from vae_zoo.data.idx import idx_header
from vae_zoo.data.idx import idx_images
from vae_zoo.data.idx import read_idx
from vae_zoo.data.sources import register_source
from vae_zoo.data.sources import tfds_catalog
from vae_zoo.data.sources.arrays import from_arrays
from vae_zoo.data.sources.arrays import from_stores
from vae_zoo.errors import UserInputError

FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@register_source("fashion_mnist")
def load(config, seed):
    folder = _find_idx_folder(config.data_dir)
    if folder is not None:
        source = f"Fashion-MNIST IDX files in {folder}"
        paths = {key: _idx_path(folder, stem) for key, stem in FASHION_MNIST_FILES.items()}
        pixels = sum(int(np.prod(idx_header(paths[key])[0])) for key in ("x_train", "x_test"))
        if pixels / 2**20 <= config.memory_budget_mb:
            return from_arrays({key: read_idx(path) for key, path in paths.items()}, config,
                               seed, source)
        stores = []
        for split in ("train", "test"):
            path = paths[f"x_{split}"]
            stat = path.stat()
            key = prepared.key_of("idx", str(path.resolve()), stat.st_size, stat.st_mtime_ns)
            labels = read_idx(paths[f"y_{split}"]).astype(np.int64)
            stores.append(idx_images(
                path, prepared.cache_root(config.cache_dir) / f"idx-{path.stem}-{key}", labels))
        return from_stores(*stores, config, seed, source)
    if tfds_catalog.usable("fashion_mnist", config.data_dir):
        return tfds_catalog.from_tfds("fashion_mnist", config, seed)
    raise UserInputError(
        "fashion_mnist not found: install it with `apt-get install dataset-fashion-mnist`, "
        "or pass --data-dir with the four IDX files, or run where TFDS can download it"
    )


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
