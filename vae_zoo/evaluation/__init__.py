"""What a trained model is worth: held-out metrics and pictures."""

from vae_zoo.evaluation.images import image_grid
from vae_zoo.evaluation.images import reconstruction_grid
from vae_zoo.evaluation.metrics import evaluate_elbo
