"""Any TFDS image dataset, used when it is prepared locally or can be downloaded right now."""

import socket

import tensorflow as tf

from vae_zoo.data.sources.arrays import VALIDATION_FRACTION
from vae_zoo.data.sources.arrays import output_shape
from vae_zoo.data.spec import Data
from vae_zoo.data.spec import DataSpec
from vae_zoo.errors import UserInputError

# Where TFDS downloads from; a 2 s connect tells us fast whether a download could work, instead of
# waiting minutes for TFDS's own retries to give up.
TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def _builder(name, data_dir):
    import tensorflow_datasets as tfds

    return tfds.builder(name, data_dir=data_dir)


def usable(name, data_dir):
    """True when TFDS has the dataset prepared locally or can download it now."""
    try:
        if _builder(name, data_dir).is_prepared():
            return True
    except Exception:  # an unprepared or unknown builder: fall through to the network check
        pass
    return download_reachable()


def download_reachable(timeout=2.0):
    try:
        with socket.create_connection(TFDS_DOWNLOAD_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def load_by_name(name, config, seed, known=()):
    import tensorflow_datasets as tfds

    if name not in tfds.list_builders():
        raise UserInputError(
            f"unknown dataset {name!r}: not one of {', '.join(known)}, a TFDS dataset "
            "name, an image folder or a .npz/.npy file"
        )
    if not usable(name, config.data_dir):
        raise UserInputError(
            f"TFDS dataset {name!r} is not prepared in the TFDS data dir and cannot be downloaded "
            "(no network); prepare it elsewhere and pass --data-dir, or use a local dataset"
        )
    return from_tfds(name, config, seed)


def from_tfds(name, config, seed):
    builder = _builder(name, config.data_dir)
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
    available = builder.info.splits
    if any(s in available for s in ("test", "validation")) or not available:
        test_name = "validation" if "validation" in available and "test" not in available else "test"
        splits = {"train": f"train[{val_pct}%:]", "validation": f"train[:{val_pct}%]",
                  "test": test_name}
    else:  # hold the end of the training split out as a test set
        test_pct = 100 - round(config.test_fraction * 100)
        splits = {"train": f"train[{val_pct}%:{test_pct}%]", "validation": f"train[:{val_pct}%]",
                  "test": f"train[{test_pct}%:]"}
    limits = {"train": config.train_limit, "test": config.test_limit}
    label = features["label"] if "label" in features else None
    num_classes = getattr(label, "num_classes", None)

    def examples(split):
        ds = builder.as_dataset(split=splits[split], shuffle_files=False)
        if num_classes:
            ds = ds.map(lambda e: {"x": e["image"], "y": tf.cast(e["label"], tf.int64)})
        else:
            ds = ds.map(lambda e: {"x": e["image"]})
        return ds.take(limits[split]) if limits.get(split) else ds

    datasets = {split: examples(split) for split in splits}
    return Data(
        splits=datasets,
        spec=DataSpec(image_shape=output_shape(shape, config.image_size), num_classes=num_classes),
        sizes={split: int(ds.cardinality()) for split, ds in datasets.items()},
        source=f"TFDS {name}",
    )

