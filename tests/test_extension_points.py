"""Each kind of extension is a new file plus a registration: a data source with ground-truth
factors, a held-out metric, and a model family without a density. These are the README's
examples, run for real."""

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.config import DataConfig
from vae_zoo.config import RunConfig
from vae_zoo.data import ArrayStore
from vae_zoo.data import Data
from vae_zoo.data import DataSpec
from vae_zoo.data import GroundTruthFactors
from vae_zoo.data import load_data
from vae_zoo.data import make_batches
from vae_zoo.data import register_source
from vae_zoo.data import Split
from vae_zoo.evaluation import EvalSettings
from vae_zoo.evaluation import evaluate_metrics
from vae_zoo.evaluation import register_metric
from vae_zoo.evaluation.report import summary
from vae_zoo.models import MODELS
from vae_zoo.models import Capabilities
from vae_zoo.models import ZooModel
from vae_zoo.models import register_model
from vae_zoo.networks import build_decoder
from vae_zoo.networks import build_encoder


class Bars(GroundTruthFactors):
    """8x8 images of one horizontal and one vertical bar: two factors, their positions."""

    factor_sizes = (8, 8)
    factor_names = ("row", "column")
    image_shape = (8, 8, 1)

    def sample_observations_from_factors(self, factors, random_state):
        images = np.zeros((len(factors), 8, 8, 1), np.float32)
        for image, (row, column) in zip(images, factors):
            image[row, :, 0] = image[:, column, 0] = 1.0
        return images


@register_source("bars")
def load_bars(config, seed):
    bars = Bars()
    rng = np.random.default_rng(seed)
    splits, sizes = {}, {"train": 512, "validation": 32, "test": 64}
    for split, size in sizes.items():
        factors, images = bars.sample(size, rng)
        splits[split] = Split(ArrayStore({"x": images, "factors": factors}), np.arange(size))
    spec = DataSpec(bars.image_shape, factor_sizes=bars.factor_sizes, factor_names=bars.factor_names)
    return Data(splits=splits, spec=spec, sizes=sizes, source="bars", ground_truth=bars)


@register_metric("code_norm")
def mean_code_norm(model, batches, settings):
    codes = np.concatenate([model.representation(b["x"]).numpy() for b in batches])
    return {"code_norm": float(np.linalg.norm(codes, axis=1).mean())}


@register_metric("needs_labels", requires=("conditional",))
def needs_labels(model, batches, settings):
    raise AssertionError("a metric that needs a conditional model ran on another one")


@register_model
class Autoencoder(ZooModel):
    """A deterministic autoencoder: a family with no density, so no ELBO and no IW NLL."""

    capabilities = Capabilities(has_density=False)
    metric_names = ("reconstruction",)

    def __init__(self, image_shape, latent_dim=4, **kwargs):
        super().__init__(image_shape, **kwargs)
        features = build_encoder("dense", image_shape, hidden_units=(32,))
        code = keras.layers.Dense(latent_dim, name="code")(features.output)
        self.encoder = keras.Model(features.input, code)
        self.decoder = build_decoder("dense", image_shape, latent_dim, hidden_units=(32,))
        self.latent_dim = latent_dim
        self.built = True

    def call(self, inputs, training=None):
        return {"logits": self.decoder(self.encoder(self.as_batch(inputs)["x"]))}

    def loss_terms(self, batch, outputs):
        bce = keras.losses.binary_crossentropy(batch["x"], outputs["logits"], from_logits=True)
        reconstruction = tf.reduce_sum(bce, axis=[1, 2]) * self.image_shape[-1]
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def representation(self, x):
        return self.encoder(x)

    def decode(self, z):
        return tf.sigmoid(self.decoder(z))

    def sample(self, n, seed=None):
        return self.decode(tf.random.normal([n, self.latent_dim]))

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                "latent_dim": self.latent_dim}


def test_a_ground_truth_source_gives_factors_end_to_end():
    data = load_data(DataConfig(dataset="bars"))
    assert data.spec.keys == ("x", "factors") and data.spec.factor_sizes == (8, 8)
    batch = next(iter(make_batches(data, "train", DataConfig(batch_size=16))))
    x, factors = batch["x"].numpy(), batch["factors"].numpy()
    for image, (row, column) in zip(x, factors):  # the factors still describe their images
        assert image[row, :, 0].all() and image[:, column, 0].all()
        assert image.sum() == 15
    rng = np.random.default_rng(0)
    factors = data.ground_truth.sample_factors(1000, rng)
    assert factors.shape == (1000, 2) and (factors.min(0) == 0).all() and (factors.max(0) == 7).all()


def test_a_model_family_without_a_density_trains_and_is_evaluated_for_what_applies():
    assert "Autoencoder" in MODELS
    raw = {"model": {"name": "ae", "class_name": "Autoencoder", "latent_dim": 3},
           "data": {"dataset": "bars", "batch_size": 32}, "train": {"epochs": 1}}
    config = RunConfig.from_dict(raw)
    data = load_data(config.data)
    model = config.model.build(data.spec)
    model.compile(**model.make_optimizers(1e-2), jit_compile=False)
    train = make_batches(data, "train", config.data)
    history = model.fit(train, epochs=3, verbose=0).history
    assert history["reconstruction"][-1] < history["reconstruction"][0]
    results = evaluate_metrics(model, make_batches(data, "test", config.data), EvalSettings())
    assert "iw_nll" not in results and "elbo" not in results
    assert {"loss", "reconstruction", "reconstruction_mse", "active_units", "code_norm"} <= set(results)
    assert results["latent_dim"] == 3
    assert summary(results).startswith("test loss ")
