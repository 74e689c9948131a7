"""Examples by index: what every split reads its batches from, in memory or from a file.

A source hands the pipeline `Split`s: an `ExampleStore` (the examples, addressable by index) and
the indices that belong to the split. The pipeline draws each epoch's order over those indices
and reads one batch at a time, so that what is held in memory is a batch, not the dataset: a
`RecordFile` reads its records with `os.pread` (the page cache holds the file, not the
process, so the process's memory does not grow with the dataset), an `ArrayStore` indexes
arrays it holds (uint8: a quarter of float32), and dSprites renders its images from their factors.
"""

import dataclasses
import os

import numpy as np

from vae_zoo.errors import UserInputError


class ExampleStore:
    """Examples addressable by index. `spec` maps each key to `(dtype, shape of one example)`;
    `read(indices)` returns a dict of arrays with `len(indices)` rows. `in_memory` says whether
    the examples are held by the process (False: read from disk or rendered when asked)."""

    spec = {}
    size = 0
    in_memory = True

    def read(self, indices):
        raise NotImplementedError

    def column(self, key):
        """The in-memory array of a small key (`y`, `factors`) for every example, or None."""
        return None


class ArrayStore(ExampleStore):
    """Examples held as arrays (images as uint8, or float32 in [0, 1]), one row per example."""

    def __init__(self, arrays):
        self.arrays = arrays
        self.size = len(arrays["x"])
        self.spec = {key: (a.dtype, a.shape[1:]) for key, a in arrays.items()}

    def read(self, indices):
        return {key: a[indices] for key, a in self.arrays.items()}

    def column(self, key):
        return self.arrays.get(key) if key != "x" else None


class RecordFile(ExampleStore):
    """Images as fixed-size records of a file (from byte `offset`), other keys as small arrays.

    Reading a batch is one `os.pread` per record: nothing is mapped into the process, so its
    resident memory stays one batch however large the file (a memory map would count every page
    it touched as the process's own). The file is opened on first read, in the process that
    reads (a forked or pickled store reopens it).

    Args:
        path: str. The file.
        offset: int. Where the first record starts (after any header).
        count: int. Number of records.
        shape: tuple. Shape of one image.
        dtype: numpy dtype of the pixels.
        extra: dict key -> array of `count` rows (labels, factors), held in memory.
    """

    in_memory = False

    def __init__(self, path, offset, count, shape, dtype=np.uint8, extra=None):
        self.path, self.offset, self.size = str(path), int(offset), int(count)
        self.shape, self.dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        self.record_bytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.extra = dict(extra or {})
        self.spec = {"x": (self.dtype, self.shape),
                     **{key: (a.dtype, a.shape[1:]) for key, a in self.extra.items()}}
        self._fd, self._pid = None, None
        needed = self.offset + self.size * self.record_bytes
        actual = os.path.getsize(self.path)
        if actual < needed:
            raise UserInputError(f"{self.path} is truncated: {self.size} images need {needed} "
                                 f"bytes, the file has {actual}")

    def read(self, indices):
        fd, size = self._file(), self.record_bytes
        indices = np.asarray(indices, np.int64)
        out = bytearray(len(indices) * size)
        view = memoryview(out)
        for row, index in enumerate(indices.tolist()):
            got = os.preadv(fd, [view[row * size:(row + 1) * size]], self.offset + index * size)
            if got != size:
                raise OSError(f"{self.path}: short read of image {index} ({got} of {size} bytes)")
        x = np.frombuffer(out, self.dtype).reshape(len(indices), *self.shape)
        return {"x": x, **{key: a[indices] for key, a in self.extra.items()}}

    def column(self, key):
        return self.extra.get(key)

    def load(self):
        """The whole store as an `ArrayStore` (for data that fits the memory budget)."""
        x = np.fromfile(self.path, self.dtype, count=self.size * int(np.prod(self.shape)),
                        offset=self.offset).reshape(self.size, *self.shape)
        return ArrayStore({"x": x, **self.extra})

    def _file(self):
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            try:
                os.close(self._fd)
            except OSError:
                pass


@dataclasses.dataclass(frozen=True)
class Split:
    """The examples of one split: `indices` into `store`, in the split's own order."""

    store: ExampleStore
    indices: np.ndarray

    def __len__(self):
        return len(self.indices)

    def take(self, count):
        """The split's first `count` examples."""
        return Split(self.store, self.indices[:count])

    def read_all(self, batch=4096):
        """Every example of the split as a dict of arrays (for small splits and tests)."""
        parts = [self.store.read(self.indices[i:i + batch])
                 for i in range(0, len(self.indices), batch)]
        return {key: np.concatenate([p[key] for p in parts]) for key in self.store.spec}


def fit_to_budget(train, test, budget_mb):
    """The train and test stores, loaded into memory when the images on disk of both fit
    `budget_mb` (`data.memory_budget_mb`); with the console line that says which.

    Returns `(train, test, notes)`."""
    on_disk = {id(s): s for s in (train, test) if isinstance(s, RecordFile)}
    if not on_disk:
        return train, test, ()
    images = sum(s.size for s in on_disk.values())
    size_mb = sum(s.size * s.record_bytes for s in on_disk.values()) / 2**20
    if size_mb <= budget_mb:
        loaded = {key: s.load() for key, s in on_disk.items()}
        note = (f"{images:,} images ({size_mb:,.0f} MB of pixels) fit data.memory_budget_mb="
                f"{budget_mb:g}: held in memory")
        return loaded.get(id(train), train), loaded.get(id(test), test), (note,)
    paths = ", ".join(sorted({s.path for s in on_disk.values()}))
    note = (f"{images:,} images ({size_mb:,.0f} MB of pixels) exceed data.memory_budget_mb="
            f"{budget_mb:g}: streamed from {paths}")
    return train, test, (note,)
