"""Evaluate a model into its run folder: metrics into metrics.json and TensorBoard, pictures into
both, and the embedding projector."""

import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import evaluate_metrics
from vae_zoo.evaluation import pictures
from vae_zoo.evaluation.latents import representations
from vae_zoo.evaluation.projector import write_projector

PROJECTOR_POINTS = 2000


def draw_pictures(model, batches, run, writer, step):
    """PNGs in the run's `pictures/`, the same images in TensorBoard, and the projector."""
    folder = run.pictures_dir
    folder.mkdir(parents=True, exist_ok=True)
    examples = list(batches.unbatch().take(PROJECTOR_POINTS).as_numpy_iterator())
    images = np.stack([e["x"] for e in examples])
    labels = np.array([e["y"] for e in examples]) if "y" in examples[0] else None
    codes = representations(model, batches, limit=len(images))
    drawn = {
        "samples": pictures.sample_grid(model),
        "reconstructions": pictures.reconstructions(model, images[:32]),
        "traversals": pictures.traversal_grid(model, images[0]),
        "interpolations": pictures.interpolation_grid(
            model, [(images[2 * i], images[2 * i + 1]) for i in range(min(6, len(images) // 2))]),
        **pictures.family_grids(model),
    }
    if codes.ndim == 2 and codes.shape[1] == 2:
        drawn["manifold"] = pictures.manifold_grid(model)
    drawn["latent_scatter"] = pictures.latent_scatter(
        codes.reshape(len(codes), -1), labels, folder / "latent_scatter.png")
    for name, picture in drawn.items():
        if name != "latent_scatter":
            pictures.save_png(picture, folder / f"{name}.png")
    with writer.as_default(step=step):
        for name, picture in drawn.items():
            tf.summary.image(f"evaluation/{name}", picture[None])
    writer.flush()
    write_projector(run.tensorboard_dir, codes.reshape(len(codes), -1), images, labels)
    return sorted(f"{run.PICTURES}/{name}.png" for name in drawn)


def write_scalars(writer, results, step):
    with writer.as_default(step=step):
        for key, value in results.items():
            if isinstance(value, (int, float)):
                tf.summary.scalar(f"test/{key}", value)
    writer.flush()


def flat_hyperparameters(config, prefix=""):
    """A run's config as `{"model.latent_dim": 16, ...}`: the values TensorBoard's HParams
    dashboard takes (bool, int, float, str); lists and None become strings."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_hyperparameters(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def write_hparams(run, config):
    """Makes the run one session of TensorBoard's HParams dashboard, so that `tensorboard
    --logdir runs/` tables every run's hyper-parameters beside its metrics (the dashboard finds
    the `test/...` scalars of `evaluation` and the epoch scalars below the session's folder)."""
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(run.tensorboard_dir))
    with writer.as_default():
        hp.hparams(flat_hyperparameters(config), trial_id=run.path.name)
    writer.flush()


def evaluate_and_report(model, batches, run, step, settings, draw=True):
    """Evaluates on `batches` (the test split) and writes TensorBoard scalars and pictures.

    Pictures go to the run's `pictures/`, TensorBoard events to `tensorboard/evaluation/`.
    Returns `(results, picture_paths)`.
    """
    results = evaluate_metrics(model, batches, settings)
    writer = tf.summary.create_file_writer(str(run.tensorboard_dir / "evaluation"))
    write_scalars(writer, results, step)
    drawn = draw_pictures(model, batches, run, writer, step) if draw else []
    return results, drawn


def summary(results):
    """One line of the held-out results that apply to the model, for the commands to print."""
    parts = []
    if "elbo" in results:
        parts.append(f"test ELBO {results['elbo']:.2f} nats (reconstruction "
                     f"{results['reconstruction']:.2f}, KL {results['kl']:.2f})")
    elif "ms_ssim" in results:  # no density, a perceptual reconstruction term (not nats)
        parts.append(f"test loss {results['loss']:.4f} (reconstruction "
                     f"{results['reconstruction']:.2f} = weight * (1 - MS-SSIM), MS-SSIM "
                     f"{results['ms_ssim']:.4f}, KL {results['kl']:.2f})")
    elif "reconstruction" in results and "perplexity" not in results:  # no density: an AE's
        parts.append(f"test loss {results['loss']:.4f} (reconstruction "
                     f"{results['reconstruction']:.2f} nats)")
    else:
        parts.append(f"test loss {results['loss']:.4f}")
    if "iw_nll" in results:
        parts.append(f"IW NLL {results['iw_nll']:.2f} nats (k={results['iw_samples']}, "
                     f"{results['iw_examples']} images, {results['iw_bits_per_dim']:.4f} bits/dim)")
    if "perplexity" in results:
        parts.append(f"reconstruction {results['reconstruction']:.2f} nats; codebook perplexity "
                     f"{results['perplexity']:.1f} of {results['num_codes']} codes, "
                     f"{results['dead_codes']} dead")
    if "prior_nll" in results:
        parts.append(f"prior NLL {results['prior_nll']:.2f} nats per code grid")
    parts.append(f"reconstruction MSE {results['reconstruction_mse']:.4f}")
    if "sample_fd" in results:
        parts.append(f"sample FD {results['sample_fd']:.2f} (precision "
                     f"{results['sample_precision']:.3f}, recall {results['sample_recall']:.3f}; "
                     f"{results['quality_images']} images, {results['quality_features']} "
                     f"features, not Inception FID)")
    for key in sorted(k for k in results if k.endswith("_sample_fd")):
        name = key[:-len("_sample_fd")]
        parts.append(f"{name} sampler FD {results[key]:.2f} (precision "
                     f"{results[f'{name}_sample_precision']:.3f}, recall "
                     f"{results[f'{name}_sample_recall']:.3f})")
    if "reconstruction_fd" in results:
        parts.append(f"reconstruction FD {results['reconstruction_fd']:.2f}")
    if "sample_quality_skipped" in results:
        parts.append(results["sample_quality_skipped"])
    parts.append(f"active units {results['active_units']}/{results['latent_dim']}")
    return "; ".join(parts)
