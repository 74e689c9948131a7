"""The one way to turn a split of a loaded dataset into batches: training, evaluation and export
all call `make_batches`, so they see the same pixels."""

from vae_zoo.data.pipeline import make_pipeline


def make_batches(data, split, data_config, seed=0, batch_size=None, limit=None, epoch=0,
                 start_step=0, shard=None, epochs=1):
    """Batched example dicts of `data.splits[split]`, prepared as `data_config` says.

    Args:
        data: a `Data` from `load_data`.
        split: `"train"` (shuffled, binarised afresh each epoch), `"validation"` or `"test"`.
        data_config: the run's `DataConfig` (binarisation, image size, batch size).
        seed: int. The run's seed.
        batch_size: int. Overrides `data_config.batch_size`.
        limit: int. Use only the first `limit` examples of the split (before any shuffling).
        epoch: int. For `"train"`: the epoch whose order and binarisation to produce.
        start_step: int. The first batch to produce (a run resumed mid-epoch).
        shard: optional `(pipeline_id, num_pipelines, num_replicas)`: only this input
            pipeline's per-replica parts of each batch (see `make_pipeline`).
        epochs: int. For `"train"`: how many epochs from `epoch` on, one after the other.
    """
    examples = data.splits[split]
    if limit is not None:
        examples = examples.take(limit)
    return make_pipeline(
        examples, batch_size or data_config.batch_size, training=split == "train", seed=seed,
        binarize=data_config.binarize, image_size=data_config.image_size, epoch=epoch,
        start_step=start_step, shard=shard, epochs=epochs,
    )


def images_of(batches, count):
    """The first `count` images (`x`) of batched examples, as one numpy array."""
    import numpy as np

    return np.stack(list(batches.unbatch().map(lambda e: e["x"]).take(count).as_numpy_iterator()))
