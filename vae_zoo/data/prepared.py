"""Prepared datasets: images decoded once into a folder of uint8 records that later runs reuse.

A source that cannot be read by index as it is (a folder of PNG/JPEG files, a compressed array
file, a TFDS split) is prepared the first time it is used, the way `tfds build` prepares a
dataset: every image is decoded (which finds any unreadable file before training starts), checked,
and written as one fixed-size uint8 record to `images.u8`, with the labels in `labels.npy` and a
`manifest.json` written last. The folder is built under a temporary name and renamed when it is
complete, so an interrupted or failed preparation leaves nothing that a later run would take
for a prepared dataset. Its name is a hash of what was read (paths, sizes, modification times,
the options that change the pixels), so a changed source is prepared again.

The cache lives in `data.cache_dir`, else `$VAE_ZOO_CACHE`, else `~/.cache/vae_zoo`.
"""

import contextlib
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from vae_zoo.data.store import RecordFile
from vae_zoo.errors import UserInputError

FORMAT = 1  # the layout of a prepared folder; part of every key
IMAGES, LABELS, MANIFEST = "images.u8", "labels.npy", "manifest.json"


def cache_root(cache_dir=None):
    """Where prepared datasets are kept."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("VAE_ZOO_CACHE"):
        return Path(os.environ["VAE_ZOO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vae_zoo"


def key_of(*parts):
    """A short hash naming a prepared folder: of `parts` (JSON-able) and the format."""
    digest = hashlib.sha256(json.dumps([FORMAT, *parts], default=str).encode())
    return digest.hexdigest()[:20]


def read_manifest(folder):
    """The manifest of a complete prepared folder, or None if there is none."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def open_prepared(folder):
    """The `RecordFile` of a complete prepared folder of images, or None if there is none."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    extra = {}
    if manifest.get("labels"):
        extra["y"] = np.load(folder / LABELS, allow_pickle=False).astype(np.int64)
    store = RecordFile(folder / IMAGES, 0, manifest["count"], manifest["shape"], extra=extra)
    store.manifest = manifest
    return store


@contextlib.contextmanager
def building(folder):
    """A temporary folder beside `folder` to write into; renamed to `folder` when the block
    ends without an error, removed otherwise."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        try:
            partial.rename(folder)
        except OSError:  # another process prepared it meanwhile: keep theirs
            if read_manifest(folder) is None:
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


class RecordWriter:
    """Appends uint8 images of one shape to `images.u8` in `folder`; `finish` writes the labels
    and the manifest (last: its presence marks the folder complete)."""

    def __init__(self, folder, shape):
        self.folder, self.shape = Path(folder), tuple(int(d) for d in shape)
        self.count = 0
        self._file = open(self.folder / IMAGES, "wb")

    def write(self, images):
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if images.shape[1:] != self.shape:
            raise ValueError(f"expected images of shape {self.shape}, got {images.shape[1:]}")
        self._file.write(images.tobytes())
        self.count += len(images)

    def finish(self, labels=None, **manifest):
        self._file.close()
        if labels is not None:
            np.save(self.folder / LABELS, np.asarray(labels, np.int64))
        manifest = {"format": FORMAT, "count": self.count, "shape": list(self.shape),
                    "labels": labels is not None, **manifest}
        (self.folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def progress(total, description):
    """A progress bar on stderr for a long preparation (silent when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="img", file=sys.stderr, disable=None,
                leave=False, mininterval=0.5)


def nothing_readable(origin):
    return UserInputError(f"{origin}: no image could be read")
