"""A `.npz` or `.npy` file of images (and optionally labels).

An image array larger than `data.memory_budget_mb` is not loaded: an uncompressed `.npy` is read
in place, a record at a time (its pixels are fixed-size records after a header), and an array
inside an `.npz` (a zip, maybe compressed) is first copied out into the cache as a `.npy`. The
pixels are checked in chunks on the way, so bad values are still refused before training.
"""

import zipfile

import numpy as np

from vae_zoo.data import prepared
from vae_zoo.data.sources.arrays import _labels
from vae_zoo.data.sources.arrays import check_pixels
from vae_zoo.data.sources.arrays import from_arrays
from vae_zoo.data.sources.arrays import from_stores
from vae_zoo.data.sources.arrays import load_npz
from vae_zoo.data.store import RecordFile
from vae_zoo.errors import UserInputError

CHECK_CHUNK = 4096  # images per chunk of the streamed pixel check
STREAMABLE = (np.dtype(np.uint8), np.dtype(np.float32))


def load(path, config, seed):
    if path.suffix not in (".npz", ".npy"):
        raise UserInputError(f"dataset file {path} must be a .npz or .npy array file")
    source = f"array file {path}"
    names = _image_arrays(path)
    headers = {name: _header(path, name) for name in names}
    nbytes = sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype, _ in headers.values())
    streamable = all(dtype in STREAMABLE and len(shape) in (3, 4)
                     for shape, dtype, _ in headers.values())
    if nbytes / 2**20 <= config.memory_budget_mb or not streamable:
        return from_arrays(_read(path), config, seed, source)
    stores = [_record_file(path, name, headers[name], config, source) for name in names]
    if len(stores) == 1:
        stores.append(None)
    return from_stores(*stores, config, seed, source)


def _image_arrays(path):
    """The names of the image arrays in the file: `[None]` for a `.npy`, else `x_train` and
    `x_test`, or the one array of images."""
    if path.suffix == ".npy":
        return [None]
    names = _npz_names(path)
    for keys in (("x_train", "x_test"), ("x",), ("images",)):
        if all(k in names for k in keys):
            return list(keys)
    if len(names) == 1:
        return names
    raise UserInputError(
        f"{path} holds arrays {sorted(names)}; expected x_train and x_test, or a single array x"
    )


def _npz_names(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile) as e:
        raise UserInputError(f"cannot read {path}: {e or type(e).__name__} (truncated or not "
                             "an .npz file?)") from None


def _header(path, name):
    """`(shape, dtype, fortran_order)` of an array, read from its header alone."""
    try:
        if name is None:
            with open(path, "rb") as f:
                return _npy_header(f)
        with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as f:
            return _npy_header(f)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserInputError(f"cannot read {path}: {e or type(e).__name__} (truncated or not "
                             "an array file?)") from None


def _npy_header(f):
    major, _ = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if major == 1
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(f)
    return shape, np.dtype(dtype), fortran


def _record_file(path, name, header, config, source):
    """A `RecordFile` over the image array `name` of `path` (copied out of an `.npz` into the
    cache first), its pixels checked a chunk at a time, with the labels that go with it."""
    shape, dtype, fortran = header
    origin = f"{source}" + (f" {name}" if name else "")
    if name is not None or fortran:
        stat = path.stat()
        key = prepared.key_of("array", str(path.resolve()), name, stat.st_size, stat.st_mtime_ns)
        target = prepared.cache_root(config.cache_dir) / f"array-{path.stem}-{key}"
        if prepared.read_manifest(target) is None:
            print(f"data: copying {origin} ({int(np.prod(shape)) * dtype.itemsize / 2**20:,.0f} "
                  f"MB) out of its archive into {target} (once; later runs reuse it)", flush=True)
            with prepared.building(target) as partial:
                _copy_out(path, name, partial / "images.npy")
                (partial / prepared.MANIFEST).write_text('{"array": true}')
        array_path = target / "images.npy"
    else:
        array_path = path
    with open(array_path, "rb") as f:
        shape, dtype, _ = _npy_header(f)
        offset = f.tell()
    store = RecordFile(array_path, offset, shape[0], shape[1:] if len(shape) == 4
                       else (*shape[1:], 1), dtype)
    _check_in_chunks(store, origin)
    labels = _labels_for(path, name)
    if labels is not None:
        store.extra["y"] = _labels(labels, store.size, f"{source} labels")
        store.spec["y"] = (np.dtype(np.int64), ())
    return store


def _copy_out(path, name, target):
    """The array `name` of the `.npz` at `path` as a C-ordered `.npy` at `target`, a chunk at a
    time (a Fortran-ordered array is loaded: it cannot be read by rows)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as f:
        shape, dtype, fortran = _npy_header(f)
        if fortran:
            array = np.lib.format.read_array(archive.open(f"{name}.npy"))
            np.save(target, np.ascontiguousarray(array))
            return
        out = np.lib.format.open_memmap(target, mode="w+", dtype=dtype, shape=shape)
        row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
        for start in range(0, shape[0], CHECK_CHUNK):
            rows = min(CHECK_CHUNK, shape[0] - start)
            data = f.read(rows * row_bytes)
            if len(data) != rows * row_bytes:
                raise UserInputError(f"{path}: array {name} is truncated")
            out[start:start + rows] = np.frombuffer(data, dtype).reshape(rows, *shape[1:])
        out.flush()
        del out


def _check_in_chunks(store, origin):
    """`check_pixels` on every chunk of a store on disk (float pixels must lie in [0, 1])."""
    if store.size == 0:
        raise UserInputError(f"{origin}: the dataset is empty (0 images)")
    if store.dtype == np.uint8:
        return
    for start in range(0, store.size, CHECK_CHUNK):
        ids = np.arange(start, min(store.size, start + CHECK_CHUNK))
        try:
            check_pixels(store.read(ids)["x"], origin)
        except UserInputError as e:
            raise UserInputError(f"{e} (in images {start}..{ids[-1]})") from None


def _labels_for(path, name):
    """The labels that go with image array `name`, or None."""
    if name is None:
        return None
    label_name = {"x_train": "y_train", "x_test": "y_test"}.get(name)
    candidates = [label_name] if label_name else ["y", "labels"]
    with np.load(path, allow_pickle=False) as arrays:
        for candidate in candidates:
            if candidate in arrays.files:
                return arrays[candidate]
    return None


def _read(path):
    """Every array the dataset needs, loaded: images (`x`, or `x_train` and `x_test`) and labels."""
    if path.suffix == ".npy":
        try:
            return {"x": np.load(path, allow_pickle=False)}
        except (ValueError, OSError, EOFError) as e:
            raise UserInputError(f"cannot read {path}: {e} (truncated or not a .npy file?)") from None
    names = _image_arrays(path)
    arrays = load_npz(path)
    if names == ["x_train", "x_test"]:
        return {k: arrays[k] for k in ("x_train", "x_test", "y_train", "y_test") if k in arrays}
    found = {"x": arrays[names[0]]}
    if len(arrays) > 1 and ("y" in arrays or "labels" in arrays):
        found["y"] = arrays["y"] if "y" in arrays else arrays["labels"]
    return found
