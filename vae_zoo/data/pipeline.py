import weakref

import numpy as np
import tensorflow as tf

EPOCH_STRIDE = 1_000_003  # seed * stride + epoch: distinct streams for every (seed, epoch)


def make_pipeline(split, batch_size, training, seed=0, binarize=False, image_size=None, epoch=0,
                  start_step=0, shard=None, epochs=1):
    """Batches of example dicts whose `x` is float32 in [0, 1], read a batch at a time from
    `split`'s store: memory holds a few batches, whatever the size of the dataset.

    A training epoch is a permutation of the split drawn from `(seed, epoch)` alone, and its
    Bernoulli draw of every pixel (with `binarize`, dynamic binarisation as in Burda et al.) from
    `(seed, epoch, batch number)`, so a run resumed at `start_step` of an epoch sees exactly the
    batches it would have seen. Held-out splits (`training=False`) keep their order and draw each
    image's binarisation from `(seed, its index)`: the same on every pass and at any batch size.

    `epochs` consecutive training epochs make one dataset, so that one iterator feeds a whole
    run: making and deleting an iterator per epoch cost about 1 s an epoch under
    MultiWorkerMirroredStrategy (measured, benchmarks/multi_worker.py --profile), and batches
    are prefetched across the end of an epoch.

    Pixels stay uint8 until the batch is read; the batch is then scaled, resized and binarised.

    Args:
        split: a `Split` (a store and the indices of the split's examples).
        batch_size: int. Global batch size.
        training: bool. Shuffle (and binarise afresh) per epoch; otherwise binarise once.
        seed: int. Seed of the order and of the binarisation noise.
        binarize: bool. Replace pixel p by a Bernoulli(p) draw.
        image_size: optional `[height, width]` to resize to.
        epoch: int. The (first) training epoch this pipeline feeds.
        start_step: int. The first batch of the first epoch to produce (resuming mid-epoch).
        shard: optional `(pipeline_id, num_pipelines, num_replicas)`: produce only this input
            pipeline's part of each global batch, as consecutive per-replica batches for its
            replicas (`num_replicas / num_pipelines` of them). A global batch is split into
            contiguous per-replica parts as `tf.distribute` splits one (sizes differ by at most
            one), so N workers together read each example of an epoch exactly once, and each
            reads only its own.
        epochs: int. Training epochs to produce, `epoch` to `epoch + epochs - 1`, one after
            the other.
    """
    if epochs < 1 or (epochs > 1 and not training):
        raise ValueError(f"epochs must be 1, or more for training; got {epochs}")
    store = split.store
    # The split's indices go into the pipeline as a tensor, not in a Python closure: TensorFlow
    # keeps every function a `numpy_function` was given for the life of the process (measured:
    # a closure over each epoch's order grew the process by the order's size every epoch).
    indices = tf.constant(np.asarray(split.indices, np.int64))
    keys, read = _reader(store)

    def example(row, order, stream):
        number, lo, hi, offset, length = tf.unstack(row)
        ids = order[lo:hi]
        values = tf.numpy_function(read, [ids], [tf.as_dtype(store.spec[k][0]) for k in keys],
                                   stateful=False)
        batch = {}
        for key, value in zip(keys, values):
            value.set_shape([None, *store.spec[key][1]])
            batch[key] = value
        image = _to_float(batch["x"], image_size)
        if binarize:
            if training:
                # Drawn for the whole global batch, and this part of it kept: any split of the
                # batch across replicas gives each image the noise one device would.
                noise = tf.random.stateless_uniform(
                    tf.concat([[length], tf.shape(image)[1:]], 0),
                    seed=tf.stack([stream, number]))[offset:offset + hi - lo]
            else:
                noise = tf.map_fn(
                    lambda i: tf.random.stateless_uniform(
                        tf.shape(image)[1:], seed=tf.stack([tf.constant(seed, tf.int64), i])),
                    ids, fn_output_signature=tf.float32)
            image = tf.cast(noise < image, tf.float32)
        return {**batch, "x": image}

    def one_epoch(number, rows):
        number = tf.cast(number, tf.int64)
        order = indices
        if training:
            order = tf.random.experimental.stateless_shuffle(
                indices, seed=tf.stack([tf.constant(seed, tf.int64), number]))
        stream = seed * EPOCH_STRIDE + number
        return tf.data.Dataset.from_tensor_slices(rows).map(
            lambda row: example(row, order, stream), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)

    count = len(split.indices)
    ds = one_epoch(epoch, _batch_rows(count, batch_size, start_step, shard))
    if epochs > 1:
        rows = _batch_rows(count, batch_size, 0, shard)
        ds = ds.concatenate(tf.data.Dataset.range(epoch + 1, epoch + epochs).flat_map(
            lambda number: one_epoch(number, rows)))
    return ds.prefetch(tf.data.AUTOTUNE)


def _reader(store):
    """`(keys, read)`: `read(ids)` returns the store's arrays for `ids` in the order of `keys`.

    Made once per store and holding it weakly: TensorFlow keeps every function given to a
    `numpy_function`, so a reader per epoch, or one that held its store, would never be freed."""
    if getattr(store, "_batch_reader", None) is None:
        keys, owner = list(store.spec), weakref.ref(store)

        def read(ids):
            batch = owner().read(ids)
            return [batch[key] for key in keys]

        store._batch_reader = (keys, read)
    return store._batch_reader


def _to_float(image, image_size):
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    image = tf.cast(image, tf.float32)
    if image_size is not None and tuple(image.shape[1:3]) != tuple(image_size):
        image = tf.clip_by_value(tf.image.resize(image, image_size, antialias=True), 0.0, 1.0)
    return image


def _batch_rows(count, batch_size, start_step, shard):
    """`(batch number, first, end, offset in the batch, batch length)` of every batch (or
    per-replica part of one) to read, as an int64 array; `first:end` index the epoch's order."""
    rows = []
    for start in range(start_step * batch_size, count, batch_size):
        length = min(batch_size, count - start)
        number = start // batch_size
        if shard is None:
            rows.append((number, start, start + length, 0, length))
            continue
        pipeline, pipelines, replicas = shard
        bounds = replica_bounds(length, replicas)
        local = replicas // pipelines
        for replica in range(pipeline * local, (pipeline + 1) * local):
            lo, hi = bounds[replica]
            rows.append((number, start + lo, start + hi, lo, length))
    return np.asarray(rows, np.int64).reshape(-1, 5)


def replica_bounds(length, replicas):
    """`[(lo, hi)]` of each replica's contiguous part of a batch of `length`: the sizes differ by
    at most one, the first replicas taking the larger parts (as `tf.distribute` splits a batch)."""
    sizes = [length // replicas + (r < length % replicas) for r in range(replicas)]
    ends = np.cumsum(sizes)
    return [(int(end - size), int(end)) for size, end in zip(sizes, ends)]
