"""A local stand-in for TensorFlow Serving: the same model layout, REST API and errors.

Built for exported zoo models (any SavedModel with predict signatures works), so that the client
code and curl lines written against it work unchanged against the real `tensorflow/serving` image.
"""

from vae_zoo.serving.errors import ServingError
from vae_zoo.serving.models import ModelRegistry
from vae_zoo.serving.rest import make_app
