"""Shipping a trained model: SavedModels in TF Serving's layout, and multi-signature TFLite files.

The signatures are the model's own serving endpoints (`ZooModel.serving_endpoints`).
"""

from vae_zoo.export.saved_model import as_float32
from vae_zoo.export.saved_model import export_saved_model
from vae_zoo.export.saved_model import next_version
from vae_zoo.export.tflite import CODE_AGREEMENT
from vae_zoo.export.tflite import QUANTIZATIONS
from vae_zoo.export.tflite import TOLERANCES
from vae_zoo.export.tflite import calibration_inputs
from vae_zoo.export.tflite import convert_to_tflite
from vae_zoo.export.tflite import parity
from vae_zoo.export.tflite import within_tolerance
