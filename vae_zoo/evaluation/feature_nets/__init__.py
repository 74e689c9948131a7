"""The zoo's own feature nets: one small classifier per dataset, trained once and shipped.

Sample-quality metrics (Fréchet distance, precision and recall) need an embedding of images in
which distances mean something. Inception-v3 cannot be downloaded here and does not fit 28x28
greyscale digits, so the zoo trains a small convnet per dataset
(`python -m vae_zoo.evaluation.feature_nets.train --dataset NAME`) and ships its weights in
`<name>/weights.npz` with a `card.yaml`. Scores in these features compare zoo models with each
other, never with Inception FID.
"""

import functools
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).resolve().parent
# Run datasets -> the feature net that embeds them. Full MNIST (TFDS) shares the sample's
# test set (the official t10k) and its digits, so the sample's net serves both.
NETS_BY_DATASET = {"mnist_sample": "mnist_sample", "mnist": "mnist_sample",
                   "fashion_mnist": "fashion_mnist"}
WEIGHTS = "weights.npz"
CARD = "card.yaml"


class FeatureNet:
    """A shipped classifier, cut at its feature layer.

    Args:
        name: str. The folder under `feature_nets/` holding `card.yaml` and `weights.npz`.
    """

    def __init__(self, name):
        from vae_zoo.config.schema import load_yaml
        from vae_zoo.evaluation.feature_nets.network import build_classifier
        from vae_zoo.evaluation.feature_nets.network import feature_extractor
        from vae_zoo.weights_file import read_weights_into

        self.name = name
        with open(FOLDER / name / CARD) as f:
            self.card = load_yaml(f, source=f"feature net {name}/{CARD}")
        self.image_shape = tuple(self.card["image_shape"])
        classifier = build_classifier(self.image_shape, self.card["num_classes"],
                                      self.card["feature_dim"])
        read_weights_into(classifier, FOLDER / name / WEIGHTS, f"feature net {name}/{WEIGHTS}",
                          mismatch="the network built from code is another one: retrain them")
        self.classifier = classifier
        self.extractor = feature_extractor(classifier)

    def features(self, images, batch_size=1000):
        """`(n, feature_dim)` float64 features of images in [0, 1] (uint8 is scaled)."""
        images = np.asarray(images)
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / 255.0
        images = np.clip(images.astype(np.float32), 0.0, 1.0).reshape(-1, *self.image_shape)
        parts = [self._embed(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return np.concatenate(parts).astype(np.float64)

    def _embed(self, batch):
        return np.asarray(self.extractor(batch, training=False))


@functools.lru_cache(maxsize=None)
def load_feature_net(name):
    """The shipped feature net `name`, built once per process."""
    return FeatureNet(name)


def feature_net_name(dataset):
    """The name of the feature net for a run's `data.dataset`, or None."""
    name = NETS_BY_DATASET.get(dataset)
    return name if name and (FOLDER / name / WEIGHTS).is_file() else None


def feature_net_for(dataset, image_shape=None):
    """The feature net for `dataset` whose input shape is `image_shape`, or None."""
    name = feature_net_name(dataset)
    if name is None:
        return None
    net = load_feature_net(name)
    if image_shape is not None and tuple(image_shape) != net.image_shape:
        return None
    return net
