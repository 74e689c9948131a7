"""Reader for the IDX format of the original MNIST and Fashion-MNIST files (optionally gzipped),
whole into memory or, for images beyond the memory budget, as a `RecordFile` streamed from disk."""

import gzip
from pathlib import Path

import numpy as np

from vae_zoo.errors import UserInputError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise UserInputError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=_DTYPES[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise UserInputError(f"{path} is truncated: header says {dims}, found {array.size} values")
    return array.reshape(dims)


def idx_header(path):
    """`(dims, header bytes)` of an IDX file of uint8 values, from its first bytes."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
            raise UserInputError(f"{path} is not an IDX file of uint8 images (bad magic number)")
        dims = [int.from_bytes(f.read(4), "big") for _ in range(head[3])]
    return dims, 4 + 4 * len(dims)


def idx_images(path, cache_folder, labels=None):
    """The uint8 images of an IDX file as a `RecordFile`: read in place when uncompressed, else
    decompressed once into `cache_folder` (a prepared folder, reused while it is complete)."""
    from vae_zoo.data import prepared
    from vae_zoo.data.store import RecordFile

    dims, offset = idx_header(path)
    shape = (*dims[1:], 1) if len(dims) == 3 else tuple(dims[1:])
    extra = {} if labels is None else {"y": labels}
    if Path(path).suffix != ".gz":
        return RecordFile(path, offset, dims[0], shape, extra=extra)
    if prepared.read_manifest(cache_folder) is None:
        print(f"data: decompressing {path} into {cache_folder} (once; later runs reuse it)",
              flush=True)
        with prepared.building(cache_folder) as partial, gzip.open(path, "rb") as f:
            f.read(offset)
            writer = prepared.RecordWriter(partial, shape)
            row = int(np.prod(shape))
            for start in range(0, dims[0], 4096):
                rows = min(4096, dims[0] - start)
                chunk = f.read(rows * row)
                if len(chunk) != rows * row:
                    raise UserInputError(f"{path} is truncated: header says {dims}")
                writer.write(np.frombuffer(chunk, np.uint8).reshape(rows, *shape))
            writer.finish(source=str(path))
    store = RecordFile(Path(cache_folder) / prepared.IMAGES, 0, dims[0], shape, extra=extra)
    return store
