"""Data larger than memory: prepared folders reused, images read a batch at a time from disk,
every worker reading its own part of each epoch, resuming mid-epoch, and bad files named before
training."""

import json

import numpy as np
import pytest
from PIL import Image

from vae_zoo.config import DataConfig
from vae_zoo.data import ArrayStore
from vae_zoo.data import RecordFile
from vae_zoo.data import Split
from vae_zoo.data import load_data
from vae_zoo.data import make_batches
from vae_zoo.data import make_pipeline
from vae_zoo.errors import UserInputError

STREAMED = {"memory_budget_mb": 0}  # every dataset read from disk


def id_images(folder, count, classes=None, size=(6, 5)):
    """`count` PNGs of noise whose first two pixels spell their id (`id // 256`, `id % 256`):
    the pipeline's output says which file every example came from."""
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        image[0, 0, 0], image[0, 1, 0] = divmod(i, 256)
        sub = folder / f"class{i % classes}" if classes else folder
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"{i:05d}.png")


def ids_of(x):
    """The ids spelled by a batch of float images in [0, 1]."""
    pixels = np.rint(np.asarray(x)[:, 0, :2, 0] * 255).astype(int)
    return pixels[:, 0] * 256 + pixels[:, 1]


def config(folder, **kwargs):
    return DataConfig(dataset=str(folder), batch_size=16, **kwargs)


def test_a_folder_is_prepared_once_streamed_beyond_the_budget_and_reused(tmp_path):
    id_images(tmp_path / "images", 300)
    cache = tmp_path / "cache"
    streamed = load_data(config(tmp_path / "images", cache_dir=str(cache), **STREAMED))
    store = streamed.splits["train"].store
    assert isinstance(store, RecordFile) and not store.in_memory
    assert store.path.startswith(str(cache))
    assert streamed.notes[0].startswith("prepared 300 images from")
    assert "exceed data.memory_budget_mb=0: streamed from" in streamed.notes[-1]
    (prepared,) = [p for p in cache.iterdir()]  # one complete folder, no partial left behind
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["count"] == 300 and manifest["shape"] == [6, 5, 3]
    assert (prepared / "images.u8").stat().st_size == 300 * 6 * 5 * 3

    held = load_data(config(tmp_path / "images", cache_dir=str(cache)))  # the default budget
    assert held.notes[0].startswith("reused the images prepared from")
    assert isinstance(held.splits["train"].store, ArrayStore)
    assert "fit data.memory_budget_mb=256: held in memory" in held.notes[-1]
    assert held.splits["train"].store.arrays["x"].dtype == np.uint8  # not float32
    # The same split and the same pixels whichever way the images are read.
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(streamed.splits[split].indices, held.splits[split].indices)
        np.testing.assert_array_equal(streamed.splits[split].read_all()["x"],
                                      held.splits[split].read_all()["x"])
    # A changed folder is prepared again.
    id_images(tmp_path / "images", 301)
    again = load_data(config(tmp_path / "images", cache_dir=str(cache), **STREAMED))
    assert again.notes[0].startswith("prepared 301 images")


def test_an_epoch_sees_every_training_image_once_in_an_order_of_seed_and_epoch(tmp_path):
    id_images(tmp_path / "images", 203)
    data = load_data(config(tmp_path / "images", **STREAMED))
    train = set(data.splits["train"].indices.tolist())

    def epoch(number, seed=0, start_step=0):
        return np.concatenate([ids_of(b["x"]) for b in make_batches(
            data, "train", config(tmp_path / "images"), seed=seed, epoch=number,
            start_step=start_step)])

    first = epoch(0)
    assert len(first) == len(train) and set(first.tolist()) == train
    np.testing.assert_array_equal(first, epoch(0))
    assert (first != epoch(1)).any() and (first != epoch(0, seed=1)).any()
    np.testing.assert_array_equal(epoch(0, start_step=5), first[5 * 16:])  # resuming mid-epoch



def test_several_epochs_in_one_dataset_are_the_epochs_one_after_the_other(tmp_path):
    """One dataset feeds a whole run (one iterator): the same batches, binarisation included,
    as building each epoch alone, for one process and for each worker's part."""
    id_images(tmp_path / "images", 75)
    data = load_data(config(tmp_path / "images", **STREAMED))
    cfg = config(tmp_path / "images", binarize=True)

    def batches(**kwargs):
        return [b["x"].numpy() for b in make_batches(data, "train", cfg, seed=2, **kwargs)]

    for shard in (None, (1, 2, 2)):
        alone = (batches(epoch=3, start_step=2, shard=shard) + batches(epoch=4, shard=shard)
                 + batches(epoch=5, shard=shard))
        together = batches(epoch=3, start_step=2, shard=shard, epochs=3)
        assert len(together) == len(alone)
        for a, b in zip(alone, together):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("replicas", [2, 3])
def test_workers_read_disjoint_parts_of_every_batch_that_together_make_the_epoch(tmp_path,
                                                                                 replicas):
    id_images(tmp_path / "images", 181)
    data = load_data(config(tmp_path / "images", **STREAMED))
    cfg = config(tmp_path / "images")
    whole = list(make_batches(data, "train", cfg, seed=4, epoch=2))
    parts = [list(make_batches(data, "train", cfg, seed=4, epoch=2, shard=(w, replicas, replicas)))
             for w in range(replicas)]
    counted = np.concatenate([ids_of(b["x"]) for part in parts for b in part])
    assert sorted(counted.tolist()) == sorted(data.splits["train"].indices.tolist())  # once each
    for number, batch in enumerate(whole):  # worker w holds the w-th contiguous part of batch n
        joined = np.concatenate([ids_of(part[number]["x"]) for part in parts])
        np.testing.assert_array_equal(joined, ids_of(batch["x"]))
        sizes = [len(part[number]["x"]) for part in parts]
        assert max(sizes) - min(sizes) <= 1


def test_a_worker_with_two_replicas_yields_one_part_per_replica(tmp_path):
    id_images(tmp_path / "images", 70)
    data = load_data(config(tmp_path / "images", **STREAMED))
    cfg = config(tmp_path / "images")
    whole = [ids_of(b["x"]) for b in make_batches(data, "train", cfg, epoch=1)]
    second_worker = [ids_of(b["x"]) for b in make_batches(data, "train", cfg, epoch=1,
                                                           shard=(1, 2, 4))]
    assert len(second_worker) == 2 * len(whole)  # replicas 2 and 3 of 4, batch after batch
    for number, batch in enumerate(whole):
        quarters = np.array_split(batch, 4)
        np.testing.assert_array_equal(second_worker[2 * number], quarters[2])
        np.testing.assert_array_equal(second_worker[2 * number + 1], quarters[3])


def test_binarisation_does_not_depend_on_how_a_batch_is_split():
    images = Split(ArrayStore({"x": np.full((40, 4, 4, 1), 0.5, np.float32)}), np.arange(40))
    whole = [b["x"].numpy() for b in make_pipeline(images, 16, True, seed=3, binarize=True)]
    halves = [[b["x"].numpy() for b in make_pipeline(images, 16, True, seed=3, binarize=True,
                                                     shard=(w, 2, 2))] for w in range(2)]
    for number, batch in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([h[number] for h in halves]), batch)
    held_out = [make_pipeline(images, size, False, seed=3, binarize=True) for size in (16, 7)]
    a, b = (np.concatenate([x["x"].numpy() for x in ds]) for ds in held_out)
    np.testing.assert_array_equal(a, b)  # one draw per image, whatever the batch size


def test_class_subfolders_label_the_streamed_images(tmp_path):
    id_images(tmp_path / "images", 60, classes=3)
    data = load_data(config(tmp_path / "images", **STREAMED))
    assert data.spec.num_classes == 3
    batch = next(iter(make_batches(data, "test", config(tmp_path / "images"))))
    np.testing.assert_array_equal(batch["y"].numpy(), ids_of(batch["x"]) % 3)


def test_a_truncated_file_is_named_before_training_and_nothing_is_left_prepared(tmp_path):
    id_images(tmp_path / "images", 40)
    broken = tmp_path / "images" / "00007.png"
    broken.write_bytes(broken.read_bytes()[:70])  # the header survives, the pixels do not
    cache = tmp_path / "cache"
    with pytest.raises(UserInputError, match=r"cannot read image .*00007\.png"):
        load_data(config(tmp_path / "images", cache_dir=str(cache)))
    assert not cache.exists() or not any(cache.iterdir())
    data = load_data(config(tmp_path / "images", cache_dir=str(cache), skip_unreadable=True))
    assert sum(data.sizes.values()) == 39
    assert data.notes[1] == ("skipped 1 unreadable file(s) (data.skip_unreadable): 00007.png")
    (tmp_path / "images" / "00008.png").write_bytes(b"not a png")
    with pytest.raises(UserInputError, match=r"cannot read image .*00008\.png"):
        load_data(config(tmp_path / "images", cache_dir=str(cache)))


def test_a_large_npy_is_read_in_place_and_its_pixels_checked_in_chunks(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (90, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    data = load_data(DataConfig(dataset=str(tmp_path / "x.npy"), cache_dir=str(tmp_path / "c"),
                                **STREAMED))
    store = data.splits["train"].store
    assert isinstance(store, RecordFile) and store.path == str(tmp_path / "x.npy")
    assert not (tmp_path / "c").exists()  # nothing copied
    np.testing.assert_array_equal(data.splits["test"].read_all()["x"][..., 0],
                                  x[data.splits["test"].indices])
    bad = (x / 255.0).astype(np.float32)
    bad[77, 1, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(UserInputError, match="NaN or infinite.*in images 0..89"):
        load_data(DataConfig(dataset=str(tmp_path / "bad.npy"), **STREAMED))


def test_a_large_npz_is_copied_out_once_with_its_labels(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (50, 4, 4), dtype=np.uint8),
              "y_train": rng.integers(0, 3, 50), "x_test": rng.integers(0, 256, (10, 4, 4),
                                                                       dtype=np.uint8),
              "y_test": rng.integers(0, 3, 10)}
    np.savez_compressed(tmp_path / "d.npz", **arrays)
    cfg = DataConfig(dataset=str(tmp_path / "d.npz"), cache_dir=str(tmp_path / "c"), **STREAMED)
    data = load_data(cfg)
    assert isinstance(data.splits["test"].store, RecordFile) and data.spec.num_classes == 3
    test = data.splits["test"].read_all()
    np.testing.assert_array_equal(test["x"][..., 0], arrays["x_test"])
    np.testing.assert_array_equal(test["y"], arrays["y_test"])
    assert len(list((tmp_path / "c").iterdir())) == 2  # x_train and x_test, copied once
    load_data(cfg)
    assert len(list((tmp_path / "c").iterdir())) == 2


def test_tfds_splits_beyond_the_budget_are_prepared_and_streamed(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    from vae_zoo.data.sources import tfds_catalog

    monkeypatch.setattr(tfds_catalog, "download_reachable", lambda timeout=2.0: True)
    with tfds.testing.mock_data(num_examples=30):
        cfg = DataConfig(dataset="mnist", cache_dir=str(tmp_path), **STREAMED)
        data = load_data(cfg)
        assert isinstance(data.splits["train"].store, RecordFile)
        assert data.sizes == {"train": 28, "validation": 2, "test": 30}
        held = load_data(DataConfig(dataset="mnist", cache_dir=str(tmp_path)))
    assert any(note.startswith("reused TFDS mnist train") for note in held.notes)
    np.testing.assert_array_equal(data.splits["test"].read_all()["x"],
                                  held.splits["test"].read_all()["x"])


def test_fashion_mnist_idx_files_beyond_the_budget_are_streamed(tmp_path):
    from tests.test_data import write_idx
    from vae_zoo.data.sources import fashion_mnist

    rng = np.random.default_rng(0)
    for key, stem in fashion_mnist.FASHION_MNIST_FILES.items():
        n = 40 if "train" in key else 10
        shape = (n, 28, 28) if key.startswith("x") else (n,)
        write_idx(tmp_path / f"{stem}.gz", rng.integers(0, 10 if key.startswith("y") else 256,
                                                        shape))
    held = load_data(DataConfig(dataset="fashion_mnist", data_dir=str(tmp_path)))
    streamed = load_data(DataConfig(dataset="fashion_mnist", data_dir=str(tmp_path),
                                    cache_dir=str(tmp_path / "c"), **STREAMED))
    assert isinstance(streamed.splits["train"].store, RecordFile)
    assert streamed.sizes == held.sizes == {"train": 38, "validation": 2, "test": 10}
    for split in ("train", "validation", "test"):
        a, b = streamed.splits[split].read_all(), held.splits[split].read_all()
        np.testing.assert_array_equal(a["x"], b["x"])
        np.testing.assert_array_equal(a["y"], b["y"])


def test_memory_does_not_grow_with_the_epochs():
    """Each epoch's order (16 MB for 2M examples) is freed with its pipeline: TensorFlow keeps
    the functions given to `numpy_function`, so an order held by one would stay for good."""
    import gc

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    split = Split(ArrayStore({"x": np.zeros((2_000_000, 1), np.uint8)}), np.arange(2_000_000))
    sizes = []
    for epoch in range(13):
        next(iter(make_pipeline(split, 128, True, epoch=epoch)))
        gc.collect()
        sizes.append(rss_mb())
    assert sizes[-1] - sizes[3] < 80, sizes  # 9 epochs of 16 MB orders would be 144 MB
