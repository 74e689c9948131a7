"""dSprites: the factor grid, images that follow their factors, the splits, and the real file."""

from unittest import mock

import numpy as np
import pytest

from vae_zoo.config import DataConfig
from vae_zoo.data import load_data
from vae_zoo.data import make_batches
from vae_zoo.data.sources import dsprites
from vae_zoo.data.sources.dsprites import DSprites
from vae_zoo.errors import UserInputError

GRID = DSprites()
SQUARE, ELLIPSE, HEART = range(3)


def draw(factors):
    """The image of one factor tuple, `(64, 64)` of 0 and 1."""
    return GRID.binary_images(np.array([factors]))[0, ..., 0].astype(np.float64)


def centroid(image):
    rows, columns = np.nonzero(image)
    return rows.mean(), columns.mean()


def test_the_grid_is_dsprites():
    assert GRID.factor_sizes == (3, 6, 40, 32, 32) and GRID.num_images == 737_280
    assert GRID.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    indices = np.array([0, 1, 32, 737_279])
    np.testing.assert_array_equal(GRID.factors_of(indices), [
        [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [2, 5, 39, 31, 31]])
    images = GRID.sample_observations_from_factors(GRID.sample_factors(8, np.random.default_rng(0)),
                                                   None)
    assert images.shape == (8, 64, 64, 1) and images.dtype == np.float32
    assert set(np.unique(images)) <= {0.0, 1.0}


def test_the_centroid_follows_pos_x_and_pos_y():
    for shape in (SQUARE, HEART):
        along_x = [centroid(draw([shape, 3, 0, x, 10])) for x in range(32)]
        along_y = [centroid(draw([shape, 3, 0, 10, y])) for y in range(32)]
        assert (np.diff([c for _, c in along_x]) > 0.5).all()  # right, a pixel a step or so
        assert np.ptp([r for r, _ in along_x]) < 0.5  # and not down (but for sampling)
        assert (np.diff([r for r, _ in along_y]) > 0.5).all()  # down
        assert np.ptp([c for _, c in along_y]) < 0.5


def test_area_grows_with_scale_as_its_square():
    areas = [draw([SQUARE, s, 0, 16, 16]).sum() for s in range(6)]
    assert (np.diff(areas) > 0).all()
    assert areas[5] / areas[0] == pytest.approx(4.0, rel=0.15)  # scale 1 vs 0.5
    assert draw([SQUARE, 5, 0, 16, 16]).sum() > draw([ELLIPSE, 5, 0, 16, 16]).sum()


def test_rotation_by_two_pi_is_rotation_by_zero():
    for shape in range(3):
        for x, y in ((0, 0), (16, 7), (31, 31)):
            np.testing.assert_array_equal(draw([shape, 4, 0, x, y]), draw([shape, 4, 39, x, y]))


def test_rotation_by_pi_turns_the_heart_upside_down():
    upright, upside_down = draw([HEART, 5, 0, 16, 16]), draw([HEART, 5, 20, 16, 16])
    rows = np.nonzero(upright.any(axis=1))[0]
    middle = (rows.min() + rows.max()) / 2
    assert centroid(upright)[0] < middle  # the lobes hold most of the mass, on top
    assert centroid(upside_down)[0] > centroid(upright)[0] + 1
    assert upside_down.sum() == pytest.approx(upright.sum(), rel=0.05)


def test_every_shape_stays_inside_the_image():
    factors = [[shape, 5, o, x, y] for shape in range(3) for o in range(40)
               for x, y in ((0, 0), (31, 31), (0, 31))]
    images = GRID.binary_images(np.array(factors))[..., 0]
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert not border.any() and images.sum(axis=(1, 2)).min() > 20


def test_the_source_yields_examples_whose_factors_draw_their_images():
    data = load_data(DataConfig(dataset="dsprites", train_limit=300, test_limit=40))
    assert data.spec.keys == ("x", "factors") and data.spec.factor_sizes == (3, 6, 40, 32, 32)
    assert data.sizes == {"train": 285, "validation": 15, "test": 40}
    assert data.ground_truth is not None and not data.splits["train"].store.in_memory
    seen = {}
    for split, examples in data.splits.items():
        examples = examples.read_all()
        x, factors = examples["x"], examples["factors"]
        assert len(x) == data.sizes[split]
        assert x.dtype == np.uint8 and x.shape[1:] == (64, 64, 1) and factors.dtype == np.int64
        np.testing.assert_array_equal(x, GRID.binary_images(factors) * 255)
        seen[split] = {tuple(f) for f in factors}
    assert not (seen["train"] & seen["test"]) and not (seen["validation"] & seen["test"])
    again = load_data(DataConfig(dataset="dsprites", train_limit=300, test_limit=40), seed=3)
    assert {tuple(f) for f in again.splits["test"].read_all()["factors"]} == seen["test"]
    batch = next(iter(make_batches(data, "train", DataConfig(batch_size=16))))
    assert set(np.unique(batch["x"].numpy())) <= {0.0, 1.0}


def fake_dsprites_npz(path, sizes=(3, 2, 2, 4, 4)):
    """A tiny file in the layout of dsprites_ndarray_...npz: a colour factor of one value, rows
    in an order of its own, random images."""
    rng = np.random.default_rng(0)
    classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), 1)
    classes = np.hstack([np.zeros((len(classes), 1), np.int64), classes])[rng.permutation(len(classes))]
    imgs = (rng.uniform(size=(len(classes), 64, 64)) < 0.1).astype(np.uint8)
    np.savez(path, imgs=imgs, latents_classes=classes, latents_values=classes.astype(np.float64))
    return imgs, classes


@pytest.mark.parametrize("give", ["file", "folder"])
def test_the_real_npz_is_read_and_indexed_by_factors(tmp_path, give):
    path = tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
    imgs, classes = fake_dsprites_npz(path)
    data = load_data(DataConfig(dataset="dsprites", test_limit=10,
                                data_dir=str(path if give == "file" else tmp_path)))
    assert data.spec.factor_sizes == (3, 2, 2, 4, 4) and data.source.startswith("dSprites ")
    assert sum(data.sizes.values()) == 192
    by_factors = {tuple(c[1:]): image for c, image in zip(classes, imgs)}
    test = data.splits["test"].read_all()
    for x, f in zip(test["x"], test["factors"]):
        np.testing.assert_array_equal(x[..., 0], by_factors[tuple(f)] * 255)
    factors = data.ground_truth.sample_factors(5, np.random.default_rng(1))
    observations = data.ground_truth.sample_observations_from_factors(factors, None)
    for f, image in zip(factors, observations):
        np.testing.assert_array_equal(image[..., 0], by_factors[tuple(f)])


def test_an_npz_that_misses_part_of_the_grid_is_refused(tmp_path):
    path = tmp_path / "partial.npz"
    imgs, classes = fake_dsprites_npz(path)
    np.savez(path, imgs=imgs[1:], latents_classes=classes[1:])
    with pytest.raises(UserInputError, match="do not cover the factor grid"):
        load_data(DataConfig(dataset="dsprites", data_dir=str(path)))


def test_prepared_tfds_dsprites_is_read(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    import tensorflow as tf

    sizes = (3, 2, 2, 4, 4)
    classes = np.stack(np.unravel_index(np.arange(np.prod(sizes)), sizes), 1)
    images = (np.random.default_rng(0).uniform(size=(len(classes), 64, 64, 1)) < 0.1)
    names = ("shape", "scale", "orientation", "x_position", "y_position")

    def as_dataset(self, split, batch_size=None, **kwargs):
        ds = tf.data.Dataset.from_tensor_slices({
            "image": images.astype(np.uint8),
            **{f"label_{n}": classes[:, i] for i, n in enumerate(names)}})
        return ds.batch(batch_size) if batch_size else ds

    builder_class = tfds.builder_cls("dsprites")
    with tfds.testing.mock_data(as_dataset_fn=as_dataset), \
            mock.patch.object(builder_class, "is_prepared", return_value=True):
        data = load_data(DataConfig(dataset="dsprites", test_limit=10, data_dir=str(tmp_path)))
    assert data.source == "TFDS dsprites" and data.spec.factor_sizes == sizes
    factors = np.array([[2, 1, 0, 3, 2]])
    index = np.ravel_multi_index(factors.T, sizes)[0]
    np.testing.assert_array_equal(data.ground_truth.binary_images(factors)[0], images[index])


def test_render_speed_is_reported(capsys):
    """Not a timed assertion: prints the rendering rate for the README and the logs."""
    import time

    factors = GRID.sample_factors(16 * 128, np.random.default_rng(0))
    start = time.perf_counter()
    for batch in np.split(factors, 16):  # as the pipeline renders them, a batch of 128 a time
        GRID.binary_images(batch)
    print(f"dsprites: {len(factors) / (time.perf_counter() - start):.0f} images/s on one core")
