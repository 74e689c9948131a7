"""Precision and recall of generated images by k-NN manifolds (Kynkäänniemi et al. 2019).

Each set's manifold is the union of balls around its points, of radius the distance to the
point's k-th nearest neighbour in its own set. Precision: the share of generated points inside
the real manifold (are samples realistic?); recall: the share of real points inside the generated
manifold (is the data covered?). Unlike the Fréchet distance these separate quality from
diversity.
"""

import numpy as np

NEAREST = 3  # k of the paper's experiments


def _squared_distances(a, b):
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(points, k=NEAREST, chunk=1024):
    """Distance of each point to its k-th nearest other point of the same set."""
    radii = np.empty(len(points))
    for start in range(0, len(points), chunk):
        d = _squared_distances(points[start:start + chunk], points)
        radii[start:start + chunk] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # [:, 0] is itself
    return radii


def coverage(manifold_points, radii, queries, chunk=1024):
    """Share of `queries` within the radius of at least one point of the manifold."""
    inside = 0
    for start in range(0, len(queries), chunk):
        d = _squared_distances(queries[start:start + chunk], manifold_points)
        inside += int((d <= radii[None, :] ** 2).any(axis=1).sum())
    return inside / len(queries)


def precision_recall(real, generated, k=NEAREST):
    """`{"precision", "recall"}` of `(n, d)` generated features against real ones."""
    real, generated = np.asarray(real, np.float64), np.asarray(generated, np.float64)
    if min(len(real), len(generated)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} points in each set")
    return {"precision": coverage(real, knn_radii(real, k), generated),
            "recall": coverage(generated, knn_radii(generated, k), real)}
