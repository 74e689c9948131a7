"""Fashion-MNIST from its original IDX files (Debian's dataset-fashion-mnist, or --data-dir), else
TFDS."""

from pathlib import Path

from vae_zoo.data.idx import read_idx
from vae_zoo.data.sources import register_source
from vae_zoo.data.sources import tfds_catalog
from vae_zoo.data.sources.arrays import from_arrays
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
        arrays = {key: read_idx(_idx_path(folder, stem)) for key, stem in FASHION_MNIST_FILES.items()}
        return from_arrays(arrays, config, seed, f"Fashion-MNIST IDX files in {folder}")
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
