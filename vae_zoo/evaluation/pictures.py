"""What a VAE learned, as pictures: arrays for TensorBoard and PNG files for the run folder.

Each `*_grid` function returns one float image `(H, W, C)` in [0, 1].
"""

import keras
import numpy as np

from vae_zoo.evaluation.images import image_grid
from vae_zoo.evaluation.images import reconstruction_grid


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def sample_grid(model, num_samples=64, seed=0):
    """Images drawn from the model with a fixed seed, so epochs compare like with like."""
    return image_grid(_numpy(model.sample(num_samples, seed=seed)))


def family_grids(model):
    """The pictures only the model's family draws (`ZooModel.family_pictures`), as grids."""
    return {name: image_grid(images, columns=columns)
            for name, (images, columns) in model.family_pictures().items()}


def reconstructions(model, images):
    return reconstruction_grid(images, _numpy(model.reconstruct(images)))


def traversal_grid(model, image, steps=9, limit=3.0, max_dims=32):
    """One row per code dimension: z_i swept over [-limit, limit], the others at the image's code."""
    code = _numpy(model.representation(image[None]))
    z = np.repeat(code, steps, axis=0)
    values = np.linspace(-limit, limit, steps, dtype="float32")
    rows = []
    for i in range(min(code.shape[-1], max_dims)):
        zi = z.copy()
        zi[:, i] = values
        rows.append(_numpy(model.decode(zi)))
    return image_grid(np.concatenate(rows), columns=steps)


def interpolation_grid(model, pairs, steps=10):
    """One row per pair of images: decoded points on the line between their codes."""
    rows = []
    for a, b in pairs:
        z_a, z_b = _numpy(model.representation(np.stack([a, b])))
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
        rows.append(_numpy(model.decode((1 - t) * z_a + t * z_b)))
    return image_grid(np.concatenate(rows), columns=steps)


def manifold_grid(model, size=15, seed=0):
    """For a 2-D latent space: images decoded on a grid of the prior's quantiles in each
    dimension (Kingma & Welling), estimated from 10,000 prior draws."""
    draws = _numpy(model.prior().sample(10000, seed=(seed, 0)))
    if draws.ndim != 2 or draws.shape[1] != 2:
        raise ValueError("the latent manifold picture needs a 2-D latent space")
    levels = np.linspace(0.05, 0.95, size)
    xs, ys = (np.quantile(draws[:, i], levels).astype("float32") for i in range(2))
    grid = np.array([[x, y] for y in ys[::-1] for x in xs], dtype="float32")
    return image_grid(_numpy(model.decode(grid)), columns=size)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display on servers and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_picture(figure, path):
    """Saves a matplotlib figure as the PNG `path` and returns it as a float RGB array in [0, 1]."""
    from PIL import Image

    figure.tight_layout()
    figure.savefig(path)
    pyplot().close(figure)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype="float32") / 255.0


def latent_scatter(codes, labels, path):
    """A PNG scatter of codes coloured by label; the first two principal axes if dim > 2."""
    plt = pyplot()
    points, axes = codes, ("z[0]", "z[1]")
    if codes.shape[1] > 2:
        centred = codes - codes.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points, axes = centred @ components[:2].T, ("principal axis 1", "principal axis 2")
    elif codes.shape[1] == 1:
        points, axes = np.concatenate([codes, np.zeros_like(codes)], axis=1), ("z[0]", "")
    figure, ax = plt.subplots(figsize=(6, 5), dpi=100)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.6)
    else:
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, alpha=0.7)
        figure.colorbar(scatter, ax=ax, label="label")
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"Codes of {len(points)} test images")
    return figure_picture(figure, path)


def save_png(picture, path):
    from PIL import Image

    array = (np.clip(picture, 0.0, 1.0) * 255).round().astype(np.uint8)
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
