"""dSprites (Matthey et al. 2017): 2D shapes indexed by five ground-truth factors.

Exactly the dSprites grid: 3 shapes (square, ellipse, heart) x 6 scales (linspace(0.5, 1)) x 40
orientations (linspace(0, 2 pi), both ends included, so the first and last draw the same picture,
as in dSprites) x 32 x 32 positions (linspace(0, 1)): 737,280 binary 64x64 images, indexed in
that order (row-major over the factors, as disentanglement_lib indexes them).

Three ways to get it, chosen by `--data-dir`:
- a `dsprites_ndarray_*.npz` file (or a folder holding one): the real images (`imgs`,
  `latents_classes`; the constant colour factor is dropped, as disentanglement_lib does);
- a TFDS data dir where TFDS `dsprites` is prepared: the same real images, read once;
- otherwise (the default) drawn in code, each image rendered from its factors when it is read:
  the set is never held in memory, and rendering (about 12,000 images/s on one core) is cheaper than
  holding 737,280 decoded images (`RenderedStore`).

How the drawn images differ from the original (drawn with the LOVE framework; no public generator
reproduces it pixel for pixel): the heart is the parametric heart x = 16 sin^3 t,
y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t; the ellipse has axes 2:1; shapes are sampled at
pixel centres without anti-aliasing; the sizes and the margin are ours (a scale-1 square is 15
pixels wide, centres span pixels 13 to 51). The factor structure, and so every metric's meaning,
is the same; absolute scores are comparable only between runs on the same variant.
"""

import functools
from pathlib import Path

import numpy as np

from vae_zoo.data.ground_truth import GroundTruthFactors
from vae_zoo.data.sources import register_source
from vae_zoo.data.sources.arrays import VALIDATION_FRACTION
from vae_zoo.data.spec import Data
from vae_zoo.data.spec import DataSpec
from vae_zoo.data.store import ExampleStore
from vae_zoo.data.store import Split
from vae_zoo.errors import UserInputError

FACTOR_SIZES = (3, 6, 40, 32, 32)
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
IMAGE_SIZE = 64
HALF_SIZE = 0.12  # half the width of a scale-1 square, as a fraction of the image
MARGIN = 0.2  # shape centres span [MARGIN, 1 - MARGIN]: a rotated scale-1 square stays inside
MASK_RESOLUTION = 256  # the canonical shapes are looked up in masks of this size over [-1, 1]^2

TEST_SIZE = 10_000
SPLIT_SEED = 0  # the split is the same for every run seed, so runs share one test set


class DSpritesFactors(GroundTruthFactors):
    """The dSprites factor grid; subclasses say how the binary image of a factor tuple is had."""

    factor_names = FACTOR_NAMES
    image_shape = (IMAGE_SIZE, IMAGE_SIZE, 1)

    @property
    def num_images(self):
        return int(np.prod(self.factor_sizes))

    def factors_of(self, indices):
        """`(n, num_factors)` int64 factors of grid indices (row-major over the factors)."""
        return np.stack(np.unravel_index(np.asarray(indices), self.factor_sizes), 1).astype(np.int64)

    def binary_images(self, factors):
        """`(n, 64, 64, 1)` uint8 images of 0 and 1."""
        raise NotImplementedError

    def sample_observations_from_factors(self, factors, random_state):
        return self.binary_images(np.asarray(factors)).astype(np.float32)


class DSprites(DSpritesFactors):
    """dSprites drawn in code: each image is rendered from its factors, vectorised over a batch."""

    factor_sizes = FACTOR_SIZES

    def binary_images(self, factors):
        shape, scale, orientation, pos_x, pos_y = np.asarray(factors, dtype=np.int64).T
        grid = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE  # pixel centres
        span = 1 - 2 * MARGIN
        centre_x = (MARGIN + span * POSITIONS[pos_x]).astype(np.float32)[:, None, None]
        centre_y = (MARGIN + span * POSITIONS[pos_y]).astype(np.float32)[:, None, None]
        size = (HALF_SIZE * SCALES[scale]).astype(np.float32)[:, None, None]
        # 2 pi is the same angle as 0: reduced first, so that both draw exactly the same pixels.
        angle = np.mod(ORIENTATIONS[orientation], 2 * np.pi)
        cos = np.cos(angle).astype(np.float32)[:, None, None]
        sin = np.sin(angle).astype(np.float32)[:, None, None]
        dx = grid[None, None, :] - centre_x  # right, along columns
        dy = centre_y - grid[None, :, None]  # up (rows go down)
        # Undo the counter-clockwise rotation and the scale, straight into mask cells (+1 for
        # the masks' empty border, where anything outside the shape's box lands): the column
        # (u + 1) R / 2 + 1 and row (1 - v) R / 2 + 1 of canonical coordinates u, v in [-1, 1].
        # Each is a sum of a term of the image column and one of the image row.
        half, last = MASK_RESOLUTION / 2, MASK_RESOLUTION + 1
        per = half / size
        column = (cos * per * dx) + (sin * per * dy + (half + 1))
        row = (sin * per * dx) - (cos * per * dy - (half + 1))
        column = np.clip(column, 0, last).astype(np.int32)  # truncation is floor when >= 0
        row = np.clip(row, 0, last).astype(np.int32)
        cell = (shape.astype(np.int32)[:, None, None] * (last + 1) + row) * (last + 1) + column
        pixels = np.take(canonical_masks().reshape(-1), cell)
        return pixels[..., None]


@functools.cache
def canonical_masks():
    """`(3, R + 2, R + 2)` uint8 masks of the square, ellipse and heart over [-1, 1]^2 (row 0 on
    top), inside an empty border of one cell."""
    from matplotlib.path import Path as Polygon

    centres = (np.arange(MASK_RESOLUTION) + 0.5) / MASK_RESOLUTION * 2 - 1
    u, v = np.meshgrid(centres, -centres)  # v is up
    square = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    ellipse = u**2 + (v / 0.5) ** 2 <= 1
    t = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    y = y - (y.max() + y.min()) / 2  # centred on its bounding box, the larger side spanning 2
    extent = max(x.max(), y.max())
    heart = Polygon(np.stack([x, y], 1) / extent).contains_points(
        np.stack([u.ravel(), v.ravel()], 1)).reshape(u.shape)
    return np.pad(np.stack([square, ellipse, heart]), ((0, 0), (1, 1), (1, 1))).astype(np.uint8)


class RecordedDSprites(DSpritesFactors):
    """The real dSprites images, bit-packed in memory (512 bytes an image, 377 MB in all).

    Args:
        packed: `(n, 512)` uint8: each image's 64x64 pixels (0 or 1), by `pack`.
        classes: `(n, num_factors)` int factor indices of each image; a leading factor with a
            single value (dSprites' colour) is dropped.
        origin: str. Where the images came from, for messages.
    """

    def __init__(self, packed, classes, origin):
        classes = np.asarray(classes, dtype=np.int64)
        if classes.ndim != 2 or len(classes) != len(packed):
            raise UserInputError(f"{origin}: expected one row of factor classes per image")
        if classes.shape[1] == len(FACTOR_SIZES) + 1 and (classes[:, 0] == 0).all():
            classes = classes[:, 1:]
        self._factor_sizes = tuple(int(s) for s in classes.max(0) + 1)
        if len(self.factor_sizes) != len(FACTOR_NAMES):
            self.factor_names = tuple(f"factor_{i}" for i in range(len(self.factor_sizes)))
        index = np.ravel_multi_index(classes.T, self.factor_sizes)
        self._row = np.full(self.num_images, -1, np.int64)
        self._row[index] = np.arange(len(index))
        if len(index) != self.num_images or (self._row < 0).any():
            raise UserInputError(
                f"{origin}: {len(index)} images do not cover the factor grid "
                f"{self.factor_sizes} once each")
        self._packed = packed

    @property
    def factor_sizes(self):
        return self._factor_sizes

    def binary_images(self, factors):
        rows = self._row[np.ravel_multi_index(np.asarray(factors).T, self.factor_sizes)]
        return np.unpackbits(self._packed[rows], axis=1).reshape(-1, *self.image_shape)

    @classmethod
    def from_npz(cls, path):
        with np.load(path, allow_pickle=False) as arrays:
            if "imgs" not in arrays.files or "latents_classes" not in arrays.files:
                raise UserInputError(f"{path} holds {sorted(arrays.files)}, not dSprites' "
                                     "imgs and latents_classes")
            images = arrays["imgs"]
            if tuple(images.shape[1:3]) != (IMAGE_SIZE, IMAGE_SIZE):
                raise UserInputError(f"{path}: images must be 64x64, got {images.shape[1:]}")
            return cls(pack(images), arrays["latents_classes"], str(path))

    @classmethod
    def from_tfds(cls, builder):
        import tensorflow_datasets as tfds

        labels = [f"label_{name}" for name in
                  ("shape", "scale", "orientation", "x_position", "y_position")]
        images, classes = [], []
        batches = builder.as_dataset(split="train", batch_size=4096, shuffle_files=False)
        for batch in tfds.as_numpy(batches):
            images.append(pack(batch["image"]))
            classes.append(np.stack([batch[label] for label in labels], 1))
        return cls(np.concatenate(images), np.concatenate(classes),
                   f"TFDS dsprites in {builder.data_dir}")


def pack(images, chunk=65536):
    """`(n, 512)` uint8: 64x64 images of 0/1 (any trailing channel axis of 1) packed 8 to a byte,
    a chunk at a time so that no second full-size copy is made."""
    return np.concatenate([
        np.packbits(np.asarray(images[i:i + chunk]).reshape(-1, IMAGE_SIZE**2) != 0, axis=1)
        for i in range(0, len(images), chunk)])


def _npz_path(data_dir):
    """The dSprites `.npz` that `--data-dir` names (a file, or a folder holding one), or None."""
    if not data_dir:
        return None
    path = Path(data_dir).expanduser()
    if path.is_file() and path.suffix == ".npz":
        return path
    found = sorted(path.glob("dsprites_ndarray_*.npz")) if path.is_dir() else []
    return found[0] if found else None


def _prepared_tfds_builder(data_dir):
    """TFDS's `dsprites` builder when it is prepared (never downloads), or None."""
    try:
        import tensorflow_datasets as tfds

        builder = tfds.builder("dsprites", data_dir=data_dir)
        return builder if builder.is_prepared() else None
    except Exception:  # no TFDS, no such builder, or an unreadable data dir: draw it instead
        return None


def ground_truth_for(data_dir):
    """`(ground truth, source description)` for `--data-dir`: a real file, TFDS, or drawn."""
    path = _npz_path(data_dir)
    if path is not None:
        return RecordedDSprites.from_npz(path), f"dSprites {path}"
    builder = _prepared_tfds_builder(data_dir)
    if builder is not None:
        return RecordedDSprites.from_tfds(builder), "TFDS dsprites"
    return DSprites(), "dSprites drawn in code"


class RenderedStore(ExampleStore):
    """The images of a factor grid, rendered (or unpacked) from their factors when read: grid
    index i is the image of `ground_truth.factors_of(i)`."""

    in_memory = False

    def __init__(self, ground_truth):
        self.ground_truth = ground_truth
        self.size = ground_truth.num_images
        self.spec = {"x": (np.dtype(np.uint8), tuple(ground_truth.image_shape)),
                     "factors": (np.dtype(np.int64), (len(ground_truth.factor_sizes),))}

    def read(self, indices):
        factors = self.ground_truth.factors_of(indices)
        return {"x": self.ground_truth.binary_images(factors) * np.uint8(255), "factors": factors}


def split_indices(num_images, config):
    """Grid indices of each split: one fixed permutation of the grid; the first `TEST_SIZE`
    (or `data.test_limit`) are the test split, 5% of the rest (after `data.train_limit`) the
    validation split, and the remainder the training split."""
    order = np.random.default_rng(SPLIT_SEED).permutation(num_images)
    num_test = min(config.test_limit or TEST_SIZE, TEST_SIZE, num_images // 10 or 1)
    test, rest = order[:num_test], order[num_test:]
    if config.train_limit:
        rest = rest[: config.train_limit]
    num_validation = max(1, int(round(len(rest) * VALIDATION_FRACTION)))
    if len(rest) - num_validation < 1:
        raise UserInputError(f"dsprites: {len(rest)} training images are too few to split")
    return {"train": rest[num_validation:], "validation": rest[:num_validation], "test": test}


@register_source("dsprites")
def load(config, seed):
    """dSprites with its factors; `seed` is unused: the split is fixed (see `SPLIT_SEED`)."""
    ground_truth, source = ground_truth_for(config.data_dir)
    if config.image_size is not None and tuple(config.image_size) != (IMAGE_SIZE, IMAGE_SIZE):
        raise UserInputError("dsprites images are 64x64 and its metrics render them at that "
                             "size; drop data.image_size")
    indices = split_indices(ground_truth.num_images, config)
    store = RenderedStore(ground_truth)
    return Data(
        splits={split: Split(store, ids) for split, ids in indices.items()},
        spec=DataSpec(ground_truth.image_shape, factor_sizes=ground_truth.factor_sizes,
                      factor_names=ground_truth.factor_names),
        sizes={split: len(ids) for split, ids in indices.items()},
        source=source,
        ground_truth=ground_truth,
    )
