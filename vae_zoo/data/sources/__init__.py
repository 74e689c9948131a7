"""Where examples come from. One module per source; `load_data` is the one entry point.

A named source is a function `load(config, seed) -> Data` registered under its dataset name:

    @register_source("my_dataset")
    def load(config, seed):
        return from_arrays({"x_train": ..., "y_train": ..., "x_test": ..., "y_test": ...},
                           config, seed, "my dataset")

`--dataset` may also be a folder of images, a `.npz`/`.npy` file, or any TFDS image dataset.
"""

from pathlib import Path

from vae_zoo.errors import UserInputError
from vae_zoo.registry import Registry
from vae_zoo.registry import import_submodules

SOURCES = Registry("dataset")
register_source = SOURCES.register


def load_data(config, seed=0):
    """Resolves `config.dataset` (a `DataConfig`) to a `Data`: a registered name, a path, or TFDS."""
    from vae_zoo.data.sources import array_file
    from vae_zoo.data.sources import folder
    from vae_zoo.data.sources import tfds_catalog

    name = config.dataset
    if name in SOURCES:
        return SOURCES.get(name)(config, seed)
    path = Path(name).expanduser()
    if path.suffix in (".npz", ".npy") or path.is_dir() or "/" in name or path.exists():
        if not path.exists():
            raise UserInputError(f"dataset path {name} does not exist")
        if path.is_dir():
            return folder.load(path, config, seed)
        return array_file.load(path, config, seed)
    return tfds_catalog.load_by_name(name, config, seed, known=SOURCES.names())


import_submodules(__name__, __path__)
