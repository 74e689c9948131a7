"""Any TFDS image dataset, used when it is prepared locally or can be downloaded right now."""

import contextlib
import socket

import numpy as np
import tensorflow as tf

from vae_zoo.data import prepared
from vae_zoo.data.sources.arrays import from_stores
from vae_zoo.data.store import ArrayStore
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
    """A TFDS image dataset: its `train` split (5% held out for validation, after a seeded
    permutation) and its `test` (or `validation`) split, else `data.test_fraction` of `train`.

    TFDS stores images encoded (PNG/JPEG in TFRecords), which cannot be read by index: each
    split is decoded once, into memory when it fits `data.memory_budget_mb`, else into uint8
    records in the cache (`vae_zoo.data.prepared`) that training reads a batch at a time.
    """
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
    if None in shape:  # decoded at the chosen size, so that every record has one shape
        shape = (*config.image_size, shape[2] or 3)
    label = features["label"] if "label" in features else None
    num_classes = getattr(label, "num_classes", None)
    available = builder.info.splits
    if available:
        test_name = next((s for s in ("test", "validation") if s in available), None)
    else:  # split sizes are only known once prepared (and not under tfds.testing.mock_data)
        test_name = "test"
    notes = []
    stores = [_split_store(builder, split, shape, num_classes, config, notes)
              for split in ("train", test_name) if split is not None]
    if len(stores) == 1:
        stores.append(None)
    return from_stores(*stores, config, seed, f"TFDS {name}", notes=notes,
                       num_classes=num_classes)


def _split_store(builder, split, shape, labelled, config, notes):
    """One TFDS split decoded: an `ArrayStore` while it fits the memory budget, else a
    `RecordFile` prepared in the cache (once: later runs reuse it)."""
    info = builder.info.splits[split] if split in builder.info.splits else None
    count = info.num_examples if info is not None else None
    budget = config.memory_budget_mb * 2**20
    record = int(np.prod(shape))
    key = prepared.key_of("tfds", builder.name, str(builder.version), str(builder.data_dir),
                          split, list(shape))
    target = prepared.cache_root(config.cache_dir) / f"tfds-{builder.name}-{split}-{key}"
    store = prepared.open_prepared(target)
    if store is not None:
        notes.append(f"reused TFDS {builder.name} {split} prepared in {target}")
        return store
    held, writer, labels = [], None, []
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(prepared.progress(count, f"{builder.name} {split}"))
        for batch in tfds_numpy(_decoded(builder, split, shape, labelled)):
            held.append(batch)
            bar.update(len(batch["x"]))
            if writer is None and sum(len(b["x"]) for b in held) * record > budget:
                print(f"data: preparing TFDS {builder.name} {split} into {target}, beyond "
                      f"data.memory_budget_mb (once; later runs reuse it)", flush=True)
                partial = stack.enter_context(prepared.building(target))
                writer = prepared.RecordWriter(partial, shape)
            if writer is not None:
                for part in held:
                    writer.write(part["x"])
                    labels.extend([part["y"]] if "y" in part else [])
                held = []
        if writer is None:
            if not held:
                raise UserInputError(f"TFDS dataset {builder.name!r} has no examples in its "
                                     f"{split} split")
            return ArrayStore({k: np.concatenate([b[k] for b in held]) for k in held[0]})
        writer.finish(labels=np.concatenate(labels) if labels else None,
                      source=f"TFDS {builder.name} {split}")
    notes.append(f"prepared TFDS {builder.name} {split} into {target}")
    return prepared.open_prepared(target)


def _decoded(builder, split, shape, labelled):
    """Batches of `{"x": uint8 images of shape, "y": int64 labels}` of a TFDS split, in order."""
    def example(e):
        image = e["image"]
        if tuple(image.shape) != tuple(shape):
            image = tf.image.resize(image, shape[:2], antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        image = tf.ensure_shape(image, shape)
        return {"x": image, "y": tf.cast(e["label"], tf.int64)} if labelled else {"x": image}

    ds = builder.as_dataset(split=split, shuffle_files=False)
    return ds.map(example, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)


def tfds_numpy(batches):
    import tensorflow_datasets as tfds

    return tfds.as_numpy(batches)
