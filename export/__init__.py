"""Deployment commands and assets.

    python -m export RUN_DIR --name NAME             SavedModel (TF Serving layout) + .tflite
    python -m export.serve --model_base_path ...     a local TF Serving-compatible REST server
    export/client.py                                 a small Python client for either server
    export/models.config, export/docker-compose.yml  the real tensorflow/serving image
"""
