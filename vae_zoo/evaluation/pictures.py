"""What a VAE learned, as pictures: arrays for TensorBoard and PNG files for the run folder.

Each `*_grid` function returns one float image `(H, W, C)` in [0, 1].
"""

import keras
import numpy as np
import tensorflow_probability as tfp

from vae_zoo.evaluation.images import image_grid
from vae_zoo.evaluation.images import reconstruction_grid


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def sample_grid(model, num_samples=64, seed=0):
    noise = np.random.default_rng(seed).standard_normal((num_samples, model.latent_dim))
    return image_grid(_numpy(model.decode(noise.astype("float32"))))


def reconstructions(model, images):
    return reconstruction_grid(images, _numpy(model.reconstruct(images)))


def traversal_grid(model, image, steps=9, limit=3.0, max_dims=32):
    """One row per latent dimension: z_i swept over [-limit, limit], the others at E[q(z|image)]."""
    z_mean, _ = model.encode(image[None])
    z = np.repeat(_numpy(z_mean), steps, axis=0)
    values = np.linspace(-limit, limit, steps, dtype="float32")
    rows = []
    for i in range(min(model.latent_dim, max_dims)):
        zi = z.copy()
        zi[:, i] = values
        rows.append(_numpy(model.decode(zi)))
    return image_grid(np.concatenate(rows), columns=steps)


def interpolation_grid(model, pairs, steps=10):
    """One row per pair of images: decoded points on the line between their posterior means."""
    rows = []
    for a, b in pairs:
        z_mean, _ = model.encode(np.stack([a, b]))
        z_a, z_b = _numpy(z_mean)
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
        rows.append(_numpy(model.decode((1 - t) * z_a + t * z_b)))
    return image_grid(np.concatenate(rows), columns=steps)


def manifold_grid(model, size=15):
    """For a 2-D latent space: images decoded on a grid of N(0, 1) quantiles (Kingma & Welling)."""
    if model.latent_dim != 2:
        raise ValueError("the latent manifold picture needs latent_dim == 2")
    quantiles = np.linspace(0.05, 0.95, size, dtype="float32")
    values = _numpy(tfp.distributions.Normal(0.0, 1.0).quantile(quantiles))
    grid = np.array([[x, y] for y in values[::-1] for x in values], dtype="float32")
    return image_grid(_numpy(model.decode(grid)), columns=size)


def latent_scatter(z_means, labels, path):
    """A PNG scatter of latent means coloured by label; the first two principal axes if dim > 2."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, axes = z_means, ("z[0]", "z[1]")
    if z_means.shape[1] > 2:
        centred = z_means - z_means.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points, axes = centred @ components[:2].T, ("principal axis 1", "principal axis 2")
    elif z_means.shape[1] == 1:
        points, axes = np.concatenate([z_means, np.zeros_like(z_means)], axis=1), ("z[0]", "")
    figure, ax = plt.subplots(figsize=(6, 5), dpi=100)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6)
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
        figure.colorbar(scatter, ax=ax, label="label")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"Latent means of {len(points)} test images")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype="float32") / 255.0


def save_png(picture, path):
    from PIL import Image

    array = (np.clip(picture, 0.0, 1.0) * 255).round().astype(np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
