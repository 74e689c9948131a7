"""Evaluate a run folder: metrics into metrics.json and TensorBoard, pictures into both."""

from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import pictures
from vae_zoo.evaluation.metrics import bits_per_dim
from vae_zoo.evaluation.metrics import evaluate_elbo
from vae_zoo.evaluation.metrics import importance_weighted_nll
from vae_zoo.evaluation.metrics import latent_statistics
from vae_zoo.evaluation.projector import write_projector

PICTURES_DIR = "pictures"
PROJECTOR_POINTS = 2000


def evaluate_model(model, data, batches, num_samples, max_examples, likelihood, progress=True):
    """All held-out numbers of `model` on `batches` (the batched test split of `data`)."""
    results = evaluate_elbo(model, batches)
    z_means, latent = latent_statistics(model, batches)
    results.update(latent)
    results.update(importance_weighted_nll(model, batches, num_samples, max_examples, progress,
                                           num_examples=data.sizes.get("test")))
    num_dims = int(np.prod(model.image_shape))
    results["iw_bits_per_dim"] = bits_per_dim(results["iw_nll"], num_dims, likelihood)
    results["elbo_bits_per_dim"] = bits_per_dim(-results["elbo"], num_dims, likelihood)
    return results, z_means


def draw_pictures(model, batches, z_means, labels, run_dir, tensorboard_dir, writer, step):
    """PNGs in `run_dir/pictures/`, the same images in TensorBoard, and the embedding projector."""
    folder = Path(run_dir) / PICTURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    images = np.stack(list(batches.unbatch().take(PROJECTOR_POINTS).as_numpy_iterator()))
    labels = None if labels is None else labels[: len(images)]
    drawn = {
        "samples": pictures.sample_grid(model),
        "reconstructions": pictures.reconstructions(model, images[:32]),
        "traversals": pictures.traversal_grid(model, images[0]),
        "interpolations": pictures.interpolation_grid(
            model, [(images[2 * i], images[2 * i + 1]) for i in range(min(6, len(images) // 2))]),
    }
    if model.latent_dim == 2:
        drawn["manifold"] = pictures.manifold_grid(model)
    drawn["latent_scatter"] = pictures.latent_scatter(
        z_means[: len(images)], labels, folder / "latent_scatter.png")
    for name, picture in drawn.items():
        if name != "latent_scatter":
            pictures.save_png(picture, folder / f"{name}.png")
    with writer.as_default(step=step):
        for name, picture in drawn.items():
            tf.summary.image(f"evaluation/{name}", picture[None])
    writer.flush()
    write_projector(tensorboard_dir, z_means[: len(images)], images, labels)
    return sorted(f"{PICTURES_DIR}/{name}.png" for name in drawn)


def write_scalars(writer, results, step):
    with writer.as_default(step=step):
        for key, value in results.items():
            if isinstance(value, (int, float)):
                tf.summary.scalar(f"test/{key}", value)
    writer.flush()


def evaluate_and_report(model, data, batches, run_dir, tensorboard_dir, step, num_samples,
                        max_examples=None, draw=True, progress=True):
    """Evaluates on the test split and writes TensorBoard scalars (and pictures, if `draw`).

    The IW NLL uses k = `num_samples` on the first `max_examples` test images (None: all).
    Pictures go to `run_dir/pictures/`, TensorBoard events to `tensorboard_dir/evaluation/`.
    Returns `(results, picture_paths)`.
    """
    results, z_means = evaluate_model(
        model, data, batches, num_samples, max_examples, model.likelihood_name, progress)
    tensorboard_dir = Path(tensorboard_dir)
    writer = tf.summary.create_file_writer(str(tensorboard_dir / "evaluation"))
    write_scalars(writer, results, step)
    drawn = []
    if draw:
        labels = None
        if data.test_labels is not None:
            labels = np.array(list(data.test_labels.take(PROJECTOR_POINTS).as_numpy_iterator()))
        drawn = draw_pictures(model, batches, z_means, labels, run_dir, tensorboard_dir, writer,
                              step)
    return results, drawn
