"""What a representation's dimensions capture, as pictures: DCI's importance matrix as a heat map,
and a traversal of each code dimension labelled with the factor it predicts best.

Both return a float RGB image `(H, W, 3)` in [0, 1] and write it as a PNG.
"""

import numpy as np

from vae_zoo.evaluation import pictures


def dimension_labels(importance, factor_names):
    """Per code dimension: `(factor it matters most for, its share of the dimension's importance)`;
    `(None, 0.0)` for a dimension no classifier used."""
    importance = np.asarray(importance, dtype=np.float64)
    labels = []
    for row in importance:
        total = row.sum()
        if total <= 0:
            labels.append((None, 0.0))
        else:
            best = int(np.argmax(row))
            labels.append((factor_names[best], float(row[best] / total)))
    return labels


def importance_heatmap(importance, factor_names, path):
    """DCI's importance matrix, code dimensions by factors; a disentangled code has one bright
    cell per row and per column."""
    plt = pictures.pyplot()
    importance = np.asarray(importance, dtype=np.float64)
    num_codes, num_factors = importance.shape
    figure, ax = plt.subplots(figsize=(1.2 + 0.9 * num_factors, 1.2 + 0.32 * num_codes), dpi=100)
    shown = ax.imshow(importance, cmap="viridis", aspect="auto", vmin=0.0)
    ax.set_xticks(range(num_factors), factor_names, rotation=30, ha="right")
    ax.set_yticks(range(num_codes), [f"z[{i}]" for i in range(num_codes)])
    for i in range(num_codes):
        for j in range(num_factors):
            if importance[i, j] >= 0.05 * max(importance.max(), 1e-12):
                ax.text(j, i, f"{importance[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if importance[i, j] < 0.6 * importance.max() else "black")
    figure.colorbar(shown, ax=ax, label="importance (gradient-boosted trees)")
    ax.set_title("DCI importance of each code dimension for each factor")
    return pictures.figure_picture(figure, path)


def ordered_traversals(model, image, importance, steps=9, limit=2.5):
    """`(grid, order)`: the traversal grid of every code dimension, rows reordered so that the
    most important dimension (summed over factors) comes first; `order[r]` is row r's dimension."""
    importance = np.asarray(importance, dtype=np.float64)
    order = np.argsort(-importance.sum(axis=1), kind="stable")
    grid = pictures.traversal_grid(model, image, steps=steps, limit=limit,
                                   max_dims=importance.shape[0])
    row_height = image.shape[0] + 1  # image_grid pads every row by 1 pixel
    rows = [grid[r * row_height:(r + 1) * row_height] for r in order]
    return np.concatenate(rows + [grid[-1:]]), order


def factor_traversals(model, image, importance, factor_names, path, steps=9, limit=2.5):
    """One row per code dimension, most important first: the dimension swept over
    [-limit, limit] from `image`'s code, labelled with the factor it predicts best."""
    plt = pictures.pyplot()
    grid, order = ordered_traversals(model, image, importance, steps, limit)
    row_height = image.shape[0] + 1
    labels = dimension_labels(importance, factor_names)
    figure, ax = plt.subplots(figsize=(2.5 + 0.6 * steps, 0.3 + 0.6 * len(order)), dpi=100)
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([(r + 0.5) * row_height for r in range(len(order))],
                  [f"z[{i}]: {labels[i][0]} ({labels[i][1]:.0%})" if labels[i][0]
                   else f"z[{i}]: unused" for i in order], fontsize=8)
    ax.set_xticks([(c + 0.5) * grid.shape[1] / steps for c in (0, steps // 2, steps - 1)],
                  [f"{-limit:g}", "0", f"{limit:g}"])
    ax.set_xlabel("value of the swept dimension (the others at the image's code)", fontsize=8)
    ax.set_title("Each dimension's traversal and the factor it predicts best (DCI)", fontsize=9)
    return pictures.figure_picture(figure, path)
