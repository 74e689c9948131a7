import tensorflow as tf


def make_pipeline(
    examples, batch_size, training, seed=0, binarize=False, image_size=None, shuffle_buffer=10000,
    cache=True,
):
    """Batches of example dicts whose `x` is float32 in [0, 1]: scale, resize, cache, shuffle,
    binarise, batch, prefetch. Other keys (`y`, `factors`) pass through unchanged.

    Caching comes before shuffling and binarisation, so each training epoch sees a new order and
    (with `binarize`) a new Bernoulli draw of every pixel: dynamic binarisation as in Burda et al.
    Held-out splits (`training=False`) are binarised once, the same way on every pass.

    Args:
        examples: a `tf.data.Dataset` of example dicts (`x`: uint8 in 0..255 or floats in [0, 1]).
        batch_size: int. Global batch size (split across replicas by the strategy).
        training: bool. Shuffle (and binarise afresh) each epoch; otherwise binarise once.
        seed: int. Seed of the shuffle order and the binarisation noise.
        binarize: bool. Replace pixel p by a Bernoulli(p) draw.
        image_size: optional `[height, width]` to resize to.
        shuffle_buffer: int. Shuffle buffer size.
        cache: bool. Hold the prepared examples in memory after the first pass (False for a
            source that renders examples on demand and has too many to hold).
    """

    def to_float(example):
        image = example["x"]
        if image.dtype == tf.uint8:
            image = tf.cast(image, tf.float32) / 255.0
        image = tf.cast(image, tf.float32)
        if image_size is not None:
            image = tf.clip_by_value(
                tf.image.resize(image, image_size, antialias=True), 0.0, 1.0
            )
        return {**example, "x": image}

    ds = examples.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if binarize and training:
        # A seeded op-level generator: a new, reproducible draw of every pixel each epoch.
        generator = tf.random.Generator.from_seed(seed)

        def sample_pixels(example):
            image = example["x"]
            return {**example, "x": tf.cast(generator.uniform(tf.shape(image)) < image, tf.float32)}

        ds = ds.map(sample_pixels)
    elif binarize:
        # Held-out splits get one fixed draw per image (seeded by its index), so that every pass
        # (ELBO, IW NLL, pictures) scores the same binary images.
        def fixed_pixels(index, example):
            image = example["x"]
            noise = tf.random.stateless_uniform(tf.shape(image), seed=tf.stack([seed, index]))
            return {**example, "x": tf.cast(noise < image, tf.float32)}

        ds = ds.enumerate().map(fixed_pixels)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
