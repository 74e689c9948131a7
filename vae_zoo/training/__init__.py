"""Turning a config into a trained model and a run folder."""

from vae_zoo.training.loop import TrainingDiverged
from vae_zoo.training.loop import TrainingLoop
from vae_zoo.training.trainer import TrainingInterrupted
from vae_zoo.training.trainer import train
