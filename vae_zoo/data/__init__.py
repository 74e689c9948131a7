"""Image datasets behind one function, and the one tf.data pipeline that feeds every model."""

from vae_zoo.data.pipeline import make_pipeline
from vae_zoo.data.sources import ImageData
from vae_zoo.data.sources import load_image_data
