import gzip

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from vae_zoo.config import DataConfig
from vae_zoo.data import load_data
from vae_zoo.data import make_batches
from vae_zoo.data import make_pipeline
from vae_zoo.data.idx import read_idx
from vae_zoo.data.sources import fashion_mnist
from vae_zoo.data.sources import tfds_catalog
from vae_zoo.data.sources.mnist import EMBEDDED_MNIST
from vae_zoo.data.store import ArrayStore
from vae_zoo.data.store import Split
from vae_zoo.errors import UserInputError


def in_memory(**arrays):
    """A split of every example of `arrays`, held in memory."""
    return Split(ArrayStore(arrays), np.arange(len(arrays["x"])))


def first_batch(split, **kwargs):
    if isinstance(split, np.ndarray):
        split = in_memory(x=split)
    return next(iter(make_pipeline(split, 32, training=False, **kwargs)))["x"].numpy()


def offline(monkeypatch, reachable=False):
    monkeypatch.setattr(tfds_catalog, "download_reachable", lambda timeout=2.0: reachable)


def test_embedded_sample_is_real_mnist_split_three_ways():
    data = load_data(DataConfig(dataset="mnist_sample"))
    assert data.image_shape == (28, 28, 1)
    assert data.sizes == {"train": 4750, "validation": 250, "test": 10000}
    assert "embedded MNIST sample" in data.source
    x = first_batch(data.splits["test"])
    assert x.dtype == np.float32 and x.shape == (32, 28, 28, 1)
    assert x.min() == 0.0 and x.max() == 1.0
    assert 0.1 < x.mean() < 0.15  # MNIST's mean intensity is 0.13


def test_labels_travel_with_their_images_in_every_split():
    data = load_data(DataConfig(dataset="mnist_sample"))
    assert data.spec.num_classes == 10 and data.spec.keys == ("x", "y")
    with np.load(EMBEDDED_MNIST) as raw:
        x_test, y_test = raw["x_test"], raw["y_test"]
        train_labels = {x.tobytes(): int(y) for x, y in zip(raw["x_train"], raw["y_train"])}
    batch = next(iter(make_batches(data, "test", DataConfig(batch_size=64))))
    np.testing.assert_array_equal(batch["y"].numpy(), y_test[:64])
    np.testing.assert_allclose(batch["x"].numpy()[..., 0], x_test[:64] / 255.0, atol=1e-6)
    for split in ("train", "validation"):  # shuffled before the split: pairs stay together
        examples = data.splits[split].take(50).read_all()
        for x, y in zip(examples["x"], examples["y"]):
            assert train_labels[x.tobytes()] == y


def test_mnist_falls_back_to_the_embedded_sample_and_says_so(monkeypatch):
    offline(monkeypatch)
    data = load_data(DataConfig(dataset="mnist"))
    assert data.source.startswith("embedded MNIST sample (TFDS mnist is not prepared")


def test_training_order_is_shuffled_and_seeded():
    data = load_data(DataConfig(dataset="mnist_sample"))
    labels_order = [first_batch(data.splits["train"]).sum() for _ in range(2)]
    # The embedded sample is sorted by label; the loader permutes it before splitting.
    train = data.splits["train"].take(500).read_all()["y"]
    assert len(set(train.tolist())) == 10
    again = load_data(DataConfig(dataset="mnist_sample"))
    np.testing.assert_array_equal(train, again.splits["train"].take(500).read_all()["y"])
    assert labels_order[0] == labels_order[1]  # unshuffled pipeline is deterministic


def test_dynamic_binarisation_draws_new_pixels_each_epoch_and_the_same_for_the_same_epoch():
    images = in_memory(x=np.full((64, 8, 8, 1), 0.5, "float32"))

    def epoch(e, seed=1):
        ds = make_pipeline(images, 64, training=True, binarize=True, seed=seed, epoch=e)
        return next(iter(ds))["x"].numpy()

    first, second = epoch(0), epoch(1)
    assert set(np.unique(first)) == {0.0, 1.0}
    assert abs(first.mean() - 0.5) < 0.05
    assert (first != second).mean() > 0.3
    np.testing.assert_array_equal(epoch(1), second)  # a resumed epoch sees the same pixels
    assert (epoch(1, seed=2) != second).mean() > 0.3


def test_training_order_is_a_function_of_seed_and_epoch():
    examples = in_memory(x=np.arange(100, dtype="float32"))

    def order(seed, epoch):
        ds = make_pipeline(examples, 100, training=True, seed=seed, epoch=epoch)
        return next(iter(ds))["x"].numpy()

    np.testing.assert_array_equal(order(0, 3), order(0, 3))
    assert sorted(order(0, 3)) == list(range(100))
    assert (order(0, 3) != order(0, 4)).any() and (order(0, 3) != order(1, 3)).any()


def test_resize_to_image_size():
    images = np.zeros((4, 28, 28, 1), np.uint8)
    assert first_batch(images, image_size=[32, 32]).shape == (4, 32, 32, 1)


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_reader_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(UserInputError, match="not an IDX file"):
        read_idx(tmp_path / "bad")


def test_fashion_mnist_from_a_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    for key, stem in fashion_mnist.FASHION_MNIST_FILES.items():
        n = 40 if "train" in key else 10
        shape = (n, 28, 28) if key.startswith("x") else (n,)
        write_idx(tmp_path / f"{stem}.gz", rng.integers(0, 256, shape))
    data = load_data(DataConfig(dataset="fashion_mnist", data_dir=str(tmp_path)))
    assert data.sizes == {"train": 38, "validation": 2, "test": 10}
    assert data.image_shape == (28, 28, 1)
    with pytest.raises(UserInputError, match="does not hold the IDX files"):
        load_data(DataConfig(dataset="fashion_mnist", data_dir=str(tmp_path / "none")))


def test_tfds_path_with_mocked_data(monkeypatch):
    offline(monkeypatch, reachable=True)
    with tfds.testing.mock_data(num_examples=20):
        data = load_data(DataConfig(dataset="mnist", train_limit=12, test_limit=5))
        assert data.source == "TFDS mnist"
        assert data.image_shape == (28, 28, 1) and data.spec.num_classes == 10
        assert first_batch(data.splits["train"]).shape == (11, 28, 28, 1)  # 1 held out
        assert first_batch(data.splits["test"]).shape == (5, 28, 28, 1)
        label = data.splits["test"].read_all()["y"][0]
        assert label.dtype == np.int64 and 0 <= int(label) < 10
        cifar = load_data(DataConfig(dataset="cifar10"))
        x = first_batch(cifar.splits["train"])
        assert cifar.image_shape == (32, 32, 3) and x.shape[1:] == (32, 32, 3)
        assert 0.0 <= x.min() and x.max() <= 1.0


def test_tfds_dataset_that_cannot_be_had_is_a_clear_error(monkeypatch):
    offline(monkeypatch)
    with pytest.raises(UserInputError, match="'cifar10' is not prepared .* cannot be downloaded"):
        load_data(DataConfig(dataset="cifar10"))
    with pytest.raises(UserInputError, match="unknown dataset 'not_a_dataset'"):
        load_data(DataConfig(dataset="not_a_dataset"))


def save_pngs(folder, sizes, mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_image_folder(tmp_path):
    save_pngs(tmp_path / "a", [(20, 24)] * 10)
    save_pngs(tmp_path / "a" / "nested", [(20, 24)] * 10)
    data = load_data(DataConfig(dataset=str(tmp_path / "a")))
    assert data.image_shape == (20, 24, 3)
    assert data.sizes == {"train": 17, "validation": 1, "test": 2}
    assert data.spec.num_classes is None  # images at the top level: no classes
    save_pngs(tmp_path / "classes" / "cat", [(8, 8)] * 6)
    save_pngs(tmp_path / "classes" / "dog", [(8, 8)] * 4)
    classes = load_data(DataConfig(dataset=str(tmp_path / "classes")))
    assert classes.spec.num_classes == 2
    labels = [int(y) for split in classes.splits.values() for y in split.read_all()["y"]]
    assert sorted(labels) == [0] * 6 + [1] * 4
    grey = tmp_path / "grey"
    save_pngs(grey, [(16, 16)] * 5, mode="L")
    assert load_data(DataConfig(dataset=str(grey))).image_shape == (16, 16, 1)


def test_image_folder_errors(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        load_data(DataConfig(dataset=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(UserInputError, match="holds no images"):
        load_data(DataConfig(dataset=str(tmp_path / "empty")))
    save_pngs(tmp_path / "mixed", [(20, 20), (30, 40)] * 3)
    with pytest.raises(UserInputError, match=r"different sizes .* data.image_size=\[20,20\]"):
        load_data(DataConfig(dataset=str(tmp_path / "mixed")))
    data = load_data(DataConfig(dataset=str(tmp_path / "mixed"), image_size=[8, 12]))
    assert data.image_shape == (8, 12, 3)


def test_array_files(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (50, 12, 12), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    data = load_data(DataConfig(dataset=str(tmp_path / "x.npy"), test_fraction=0.2))
    assert data.image_shape == (12, 12, 1)
    assert data.sizes == {"train": 38, "validation": 2, "test": 10}
    np.savez(tmp_path / "split.npz", x_train=x[:40] / 255.0, x_test=x[40:] / 255.0)
    data = load_data(DataConfig(dataset=str(tmp_path / "split.npz")))
    assert data.sizes["test"] == 10
    np.save(tmp_path / "raw.npy", x.astype(np.float32))
    with pytest.raises(UserInputError, match=r"uint8 \(0..255\) or floats in \[0, 1\]"):
        load_data(DataConfig(dataset=str(tmp_path / "raw.npy")))
    np.savez(tmp_path / "odd.npz", a=x, b=x)
    with pytest.raises(UserInputError, match="expected x_train and x_test, or a single array"):
        load_data(DataConfig(dataset=str(tmp_path / "odd.npz")))


def test_held_out_binarisation_is_the_same_on_every_pass():
    images = in_memory(x=np.full((64, 8, 8, 1), 0.5, "float32"))
    ds = make_pipeline(images, 16, training=False, binarize=True, seed=1)
    first, second = (np.concatenate([b["x"] for b in ds.as_numpy_iterator()]) for _ in range(2))
    assert set(np.unique(first)) == {0.0, 1.0} and abs(first.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(first, second)
    assert (first[0] != first[1]).any()  # each image has its own draw
