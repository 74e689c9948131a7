"""A zoo model scored on its run's ground truth: the five metrics into metrics.json and
TensorBoard (`disentanglement/<metric>` in the `evaluation` run)."""

import numpy as np

from vae_zoo.evaluation.disentanglement import compute_all
from vae_zoo.evaluation.disentanglement import headline_scores


def representation_function(model):
    """images -> numpy codes: the model's `representation` (the posterior mean for a VAE)."""
    import keras

    def encode(images):
        return keras.ops.convert_to_numpy(model.representation(np.asarray(images, np.float32)))

    return encode


def score_model(model, ground_truth, num_points=None, random_state=0):
    """All five metrics of `model`'s representation; see `compute_all`."""
    return compute_all(ground_truth, representation_function(model), random_state, num_points)


def write_scalars(run, results, step):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(run.tensorboard_dir / "evaluation"))
    with writer.as_default(step=step):
        for name, value in headline_scores(results).items():
            tf.summary.scalar(f"disentanglement/{name}", value)
    writer.flush()


def draw_pictures(model, ground_truth, results, run, step):
    """DCI's importance heat map and the labelled traversals: PNGs in the run's `pictures/` and
    images in TensorBoard (`disentanglement/...` in the `evaluation` run). Returns their paths."""
    import tensorflow as tf

    from vae_zoo.evaluation.disentanglement import pictures

    importance = results["dci"]["importance_matrix"]
    names = ground_truth.factor_names
    _, images = ground_truth.sample(1, np.random.default_rng(0))
    folder = run.pictures_dir
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {
        "dci_importance": pictures.importance_heatmap(
            importance, names, folder / "dci_importance.png"),
        "factor_traversals": pictures.factor_traversals(
            model, np.asarray(images[0], np.float32), importance, names,
            folder / "factor_traversals.png"),
    }
    writer = tf.summary.create_file_writer(str(run.tensorboard_dir / "evaluation"))
    with writer.as_default(step=step):
        for name, picture in drawn.items():
            tf.summary.image(f"disentanglement/{name}", picture[None])
    writer.flush()
    return [f"{run.PICTURES}/{name}.png" for name in drawn]


def summary(results):
    """One line of the headline scores, for the evaluate command to print."""
    return "disentanglement: " + ", ".join(
        f"{name} {value:.3f}" for name, value in headline_scores(results).items())
