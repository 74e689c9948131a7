import math

import numpy as np


def image_grid(images, columns=None, pad=1):
    """Tiles `(n, h, w, c)` images in [0, 1] into one `(H, W, c)` picture, `columns` per row."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + pad) + pad, columns * (w + pad) + pad, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def reconstruction_grid(inputs, reconstructions, columns=8):
    """Rows of inputs, each followed by the row of their reconstructions."""
    inputs, reconstructions = np.asarray(inputs), np.asarray(reconstructions)
    rows = []
    for start in range(0, len(inputs), columns):
        rows += [inputs[start : start + columns], reconstructions[start : start + columns]]
    return image_grid(np.concatenate(rows), columns=columns)
