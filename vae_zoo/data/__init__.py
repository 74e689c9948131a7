"""Datasets as example dicts (`x`, and `y` or `factors` where the source has them), the sources
that provide them, and the one tf.data pipeline that batches them for every model."""

from vae_zoo.data.batches import images_of
from vae_zoo.data.batches import make_batches
from vae_zoo.data.ground_truth import GroundTruthFactors
from vae_zoo.data.pipeline import make_pipeline
from vae_zoo.data.sources import SOURCES
from vae_zoo.data.sources import load_data
from vae_zoo.data.sources import register_source
from vae_zoo.data.spec import Data
from vae_zoo.data.spec import DataSpec
from vae_zoo.data.store import ArrayStore
from vae_zoo.data.store import ExampleStore
from vae_zoo.data.store import RecordFile
from vae_zoo.data.store import Split
