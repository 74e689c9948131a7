"""The disentanglement pictures: labels from DCI's importance matrix, rows in importance order."""

import numpy as np

from vae_zoo.evaluation.disentanglement import pictures

NAMES = ("shape", "scale", "pos_x")


class DimensionPainter:
    """A stand-in model: code 0 for every image; decode paints each image with the index of the
    code's largest |z_i| (plus one, over 10), so a traversal row shows which dimension it swept."""

    def representation(self, x):
        return np.zeros((len(x), 4), np.float32)

    def decode(self, z):
        value = (np.argmax(np.abs(z), axis=1) + 1) / 10.0
        return np.broadcast_to(value[:, None, None, None], (len(z), 6, 5, 1)).astype(np.float32)


IMPORTANCE = np.array([[0.0, 0.0, 0.0],    # z[0]: unused
                       [0.1, 0.0, 0.3],    # z[1]: pos_x, 75% of its importance
                       [0.9, 0.05, 0.05],  # z[2]: shape, 90%
                       [0.0, 0.2, 0.0]])   # z[3]: scale, 100%


def test_each_dimension_is_labelled_with_the_factor_it_matters_most_for():
    labels = pictures.dimension_labels(IMPORTANCE, NAMES)
    assert [name for name, _ in labels] == [None, "pos_x", "shape", "scale"]
    np.testing.assert_allclose([share for _, share in labels], [0.0, 0.75, 0.9, 1.0])


def test_traversal_rows_come_in_order_of_importance():
    image = np.zeros((6, 5, 1), np.float32)
    grid, order = pictures.ordered_traversals(DimensionPainter(), image, IMPORTANCE, steps=3)
    assert list(order) == [2, 1, 3, 0]  # total importance 1.0, 0.4, 0.2, 0.0
    assert grid.shape == (4 * 7 + 1, 3 * 6 + 1, 1)
    for row, dimension in enumerate(order):
        # the first column sweeps z[dimension] to -limit: painted (dimension + 1) / 10
        assert grid[row * 7 + 1, 1, 0] == np.float32((dimension + 1) / 10.0)


def test_pictures_are_written_as_png_and_returned_as_rgb(tmp_path):
    heatmap = pictures.importance_heatmap(IMPORTANCE, NAMES, tmp_path / "heat.png")
    traversals = pictures.factor_traversals(DimensionPainter(), np.zeros((6, 5, 1), np.float32),
                                            IMPORTANCE, NAMES, tmp_path / "trav.png")
    for picture, name in ((heatmap, "heat.png"), (traversals, "trav.png")):
        assert (tmp_path / name).stat().st_size > 1000
        assert picture.ndim == 3 and picture.shape[-1] == 3
        assert 0.0 <= picture.min() and picture.max() <= 1.0 and picture.std() > 0.05
