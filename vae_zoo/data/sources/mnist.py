"""MNIST: the real sample shipped in the package, or the full set through TFDS when it can be had."""

from pathlib import Path

from vae_zoo.data.sources import register_source
from vae_zoo.data.sources import tfds_catalog
from vae_zoo.data.sources.arrays import from_arrays
from vae_zoo.data.sources.arrays import load_npz

EMBEDDED_MNIST = Path(__file__).resolve().parent.parent / "mnist_sample.npz"


@register_source("mnist_sample")
def load_sample(config, seed):
    return from_arrays(load_npz(EMBEDDED_MNIST), config, seed, "embedded MNIST sample")


@register_source("mnist")
def load(config, seed):
    if tfds_catalog.usable("mnist", config.data_dir):
        return tfds_catalog.from_tfds("mnist", config, seed)
    return from_arrays(
        load_npz(EMBEDDED_MNIST), config, seed,
        "embedded MNIST sample (TFDS mnist is not prepared here and cannot be downloaded)",
    )
