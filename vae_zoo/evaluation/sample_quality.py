"""Sample quality in the features of the zoo's own classifiers: the Fréchet distance (FD) and
precision/recall of a model's samples (from its prior and from any fitted ex-post sampler), and
the FD of its reconstructions, against test images.

Every model that samples gets them, with a density or without (autoencoders' samples are
judged the same way), when the zoo ships a feature net for the run's dataset
(`feature_nets/`). The numbers compare zoo models on one dataset at one sample count (the FD's
bias grows as the count falls); they are not Inception FIDs.

`sample_quality(images, reference_images, dataset)` scores images from anywhere (an ex-post
sampler, another library) the same way.
"""

import keras
import numpy as np

from vae_zoo.config.schema import MAX_QUALITY_IMAGES
from vae_zoo.errors import UserInputError
from vae_zoo.evaluation import register_metric
from vae_zoo.evaluation.feature_nets import feature_net_for
from vae_zoo.evaluation.feature_nets import feature_net_name
from vae_zoo.evaluation.frechet import frechet_distance_of
from vae_zoo.evaluation.manifold import NEAREST
from vae_zoo.evaluation.manifold import precision_recall

CHUNK = 500  # images drawn (or reconstructed) per model call: memory stays flat


def scores_of_features(features, reference_features, k=NEAREST):
    """`{"fd", "precision", "recall"}` of two feature sets."""
    return {"fd": frechet_distance_of(features, reference_features),
            **precision_recall(reference_features, features, k)}


def sample_quality(images, reference_images, dataset, k=NEAREST):
    """`{"fd", "precision", "recall"}` of `images` against `reference_images` (real ones).

    Args:
        images: `(n, H, W, C)` float in [0, 1] (or uint8): samples from any model or sampler.
        reference_images: `(m, H, W, C)`: real images, e.g. the test split. Keep `n` and `m`
            the same across the models compared (the FD's bias depends on them); a larger `m`
            steadies the precision (docs/sample_quality.md).
        dataset: str. The dataset name whose shipped feature net embeds both (`mnist_sample`,
            `mnist`, `fashion_mnist`).
        k: int. Neighbours of the manifold estimate (Kynkäänniemi et al.: 3).
    """
    net = feature_net_for(dataset)
    if net is None:
        raise UserInputError(f"no feature net for dataset {dataset!r}; the zoo ships them for "
                             "mnist_sample, mnist and fashion_mnist")
    for name, array in (("images", images), ("reference_images", reference_images)):
        if tuple(np.shape(array)[1:]) not in (net.image_shape, net.image_shape[:2]):
            raise UserInputError(f"{name} have shape {tuple(np.shape(array)[1:])}; the "
                                 f"{net.name} feature net takes {net.image_shape}")
    return scores_of_features(net.features(images), net.features(reference_images), k)


def _test_examples(batches, count):
    """The first `count` test images, and their labels when the batches have them."""
    images, labels, seen = [], [], 0
    for batch in batches:
        images.append(keras.ops.convert_to_numpy(batch["x"]))
        if "y" in batch:
            labels.append(keras.ops.convert_to_numpy(batch["y"]))
        seen += len(images[-1])
        if seen >= count:
            break
    images = np.concatenate(images)[:count]
    return images, (np.concatenate(labels)[:count] if labels else None)


def model_samples(model, count, seed=0, sampler=None):
    """`count` images from `model.sample` (or decoded draws of an ex-post `sampler`), drawn in
    chunks with fixed seeds (repeatable)."""
    from vae_zoo.samplers.codes import sampler_images

    def draw(n, chunk_seed):
        if sampler is None:
            return model.sample(n, seed=chunk_seed)
        return sampler_images(model, sampler, n, chunk_seed)

    parts = [keras.ops.convert_to_numpy(draw(min(CHUNK, count - start), seed + i))
             for i, start in enumerate(range(0, count, CHUNK))]
    return np.concatenate(parts)


def model_reconstructions(model, images, labels=None):
    parts = []
    for start in range(0, len(images), CHUNK):
        x = images[start:start + CHUNK]
        if model.capabilities.conditional and labels is not None:
            parts.append(model.reconstruct(x, labels[start:start + CHUNK]))
        else:
            parts.append(model.reconstruct(x))
    return np.concatenate([keras.ops.convert_to_numpy(p) for p in parts])


@register_metric("sample_quality")
def generation_quality(model, batches, settings):
    """FD, precision and recall of `settings.quality_images` samples against as many test
    images, and the FD of those test images' reconstructions; a note when no feature net fits."""
    if settings.dataset is None or not settings.quality_images:
        return {}
    net = feature_net_for(settings.dataset, model.image_shape)
    if net is None:
        reason = (f"the {feature_net_name(settings.dataset)} feature net takes other images "
                  f"than {tuple(model.image_shape)}" if feature_net_name(settings.dataset)
                  else f"no feature net for {settings.dataset}")
        return {"sample_quality_skipped": f"sample FD, precision and recall skipped: {reason}"}
    count = min(settings.quality_images, MAX_QUALITY_IMAGES)
    reference, labels = _test_examples(batches, count)
    count = len(reference)
    if count <= NEAREST:
        return {"sample_quality_skipped": f"sample FD, precision and recall skipped: "
                                          f"{count} test images"}
    reference_features = net.features(reference)
    results = {}
    for sampler in (None, *settings.samplers):  # None: the model's own prior
        try:
            samples = model_samples(model, count, sampler=sampler)
        except NotImplementedError:  # a model that does not sample
            continue
        prefix = "sample_" if sampler is None else f"{sampler.name}_sample_"
        scores = scores_of_features(net.features(samples), reference_features)
        results.update({f"{prefix}{key}": value for key, value in scores.items()})
    reconstructions = model_reconstructions(model, reference, labels)
    results["reconstruction_fd"] = frechet_distance_of(net.features(reconstructions),
                                                       reference_features)
    results["quality_images"] = count
    results["quality_features"] = f"{net.name} classifier ({net.card['feature_dim']}-d)"
    return results
