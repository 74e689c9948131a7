"""A folder of image files. When every image sits in a subfolder, the subfolders are the classes.

The first run on a folder prepares it (`vae_zoo.data.prepared`): every file is decoded once, on
every core, into uint8 records in the cache, which finds an unreadable or truncated file before
training starts and names it. Later runs on the unchanged folder reuse the records; training
then reads them a batch at a time (or holds them when they fit `data.memory_budget_mb`), so
memory does not grow with the number of images. Decoding the files again each epoch instead
would cost a core of PNG decoding per few thousand images a second, every epoch.
"""

import concurrent.futures
import hashlib
import os

import numpy as np

from vae_zoo.data import prepared
from vae_zoo.data.sources.arrays import from_stores
from vae_zoo.errors import UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
CHUNK = 512  # files decoded per round: bounds the decoded images waiting to be written


def load(folder, config, seed):
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserInputError(
            f"image folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})"
        )
    key = prepared.key_of("folder", str(folder.resolve()), _fingerprint(folder, files),
                          config.image_size, config.skip_unreadable)
    target = prepared.cache_root(config.cache_dir) / f"folder-{folder.name}-{key}"
    store = prepared.open_prepared(target)
    if store is not None:
        note = f"reused the images prepared from {folder} in {target}"
    else:
        store = _prepare(folder, files, config, target)
        note = f"prepared {store.size:,} images from {folder} into {target}"
    skipped = store.manifest.get("skipped", [])
    notes = [note]
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable file(s) (data.skip_unreadable): "
                     + ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else ""))
    return from_stores(store, None, config, seed, f"image folder {folder}", notes=notes)


def _fingerprint(folder, files):
    """A hash of every file's path, size and modification time: what says the folder changed."""
    digest = hashlib.sha256()
    for path in files:
        try:
            st = path.stat()
        except OSError as e:
            raise UserInputError(f"cannot read image {path}: {e.strerror}") from None
        digest.update(f"{path.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _in_chunks(pool, function, items):
    """`function` over `items` on `pool`, CHUNK at a time: at most CHUNK results wait."""
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        yield from zip(chunk, pool.map(function, chunk))


def _readable(results, skip, skipped):
    """The `(path, result)` pairs whose result is not a reason the file cannot be read; such a
    file is refused in one line, or with `skip` appended to `skipped`."""
    for path, result in results:
        if not isinstance(result, str):
            yield path, result
        elif skip:
            skipped.append(path)
        else:
            raise UserInputError(f"cannot read image {path}: {result}")


def _prepare(folder, files, config, target):
    """Decodes every file into a prepared folder at `target`; returns its store."""
    from PIL import Image

    skip = config.skip_unreadable
    skipped = []
    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        # Headers first (size and mode, no pixels): a folder of mixed sizes is refused, and the
        # colour mode chosen, before anything is decoded or written.
        kept, sizes, modes = [], set(), set()
        for path, header in _readable(_in_chunks(pool, _header, files), skip, skipped):
            kept.append(path)
            sizes.add(header[0])
            modes.add(header[1])
        if not kept:
            raise prepared.nothing_readable(f"image folder {folder}")
        if config.image_size is None and len(sizes) > 1:
            (w1, h1), (w2, h2) = sorted(sizes)[:2]
            raise UserInputError(
                f"images in {folder} have different sizes ({h1}x{w1}, {h2}x{w2}, ...); "
                f"choose one with --set data.image_size=[{h1},{w1}]"
            )
        mode = "L" if modes == {"L"} else "RGB"
        (width, height) = (next(iter(sizes)) if config.image_size is None
                           else (config.image_size[1], config.image_size[0]))
        shape = (height, width, 1 if mode == "L" else 3)
        decode = _Decoder(mode, (width, height), Image)
        print(f"data: preparing {len(kept):,} images of {folder} (once; later runs reuse them)",
              flush=True)
        kept_files = []
        with prepared.building(target) as partial, prepared.progress(
                len(kept), "decoding") as bar:
            writer = prepared.RecordWriter(partial, shape)
            images = []
            for path, image in _readable(_in_chunks(pool, decode, kept), skip, skipped):
                images.append(image)
                kept_files.append(path)
                if len(images) == CHUNK:
                    writer.write(np.stack(images))
                    images = []
                bar.update(1)
            if images:
                writer.write(np.stack(images))
            if not kept_files:
                raise prepared.nothing_readable(f"image folder {folder}")
            labels = _class_labels(folder, kept_files)
            writer.finish(labels=labels, source=str(folder),
                          skipped=[str(p.relative_to(folder)) for p in skipped])
    return prepared.open_prepared(target)


def _header(path):
    """`(size, mode)` of an image file from its header, or the reason it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size, image.mode
    except (OSError, ValueError, SyntaxError) as e:
        return str(e) or type(e).__name__


class _Decoder:
    """Decodes one file to `(height, width, channels)` uint8 in `mode` and `size`, or returns
    the reason it cannot (a truncated file fails here: its header alone looked fine)."""

    def __init__(self, mode, size, image_module):
        self.mode, self.size, self.Image = mode, size, image_module

    def __call__(self, path):
        try:
            with self.Image.open(path) as image:
                image.load()
                image = image.convert(self.mode)
                if image.size != self.size:
                    image = image.resize(self.size, self.Image.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:
            return str(e) or type(e).__name__
        return array if array.ndim == 3 else array[..., None]


def _class_labels(folder, files):
    """Class indices from the first subfolder when every image sits one level down and there is
    more than one class; None otherwise."""
    parts = [p.relative_to(folder).parts for p in files]
    classes = sorted({part[0] for part in parts})
    if all(len(part) == 2 for part in parts) and len(classes) > 1:
        return np.array([classes.index(part[0]) for part in parts])
    return None
