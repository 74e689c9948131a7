"""Run configuration: plain YAML validated into dataclasses, and the zoo of named model configs."""

from vae_zoo.config.schema import DataConfig
from vae_zoo.config.schema import EvalConfig
from vae_zoo.config.schema import ModelConfig
from vae_zoo.config.schema import RunConfig
from vae_zoo.config.schema import TrainConfig
from vae_zoo.config.schema import apply_overrides
from vae_zoo.config.zoo import available_models
from vae_zoo.config.zoo import load_zoo_config
