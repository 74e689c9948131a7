"""A feature net's weights on disk: a plain .npz of arrays (float16), read without pickle."""

import numpy as np

from vae_zoo.errors import UserInputError


def write_weights(model, path):
    """Writes `model.weights` as float16 arrays; returns the rounded weights loading gives back."""
    arrays = [np.asarray(w).astype(np.float16) for w in model.get_weights()]
    with open(path, "wb") as f:
        np.savez_compressed(f, names=np.array([v.path for v in model.weights]),
                            **{f"w{i}": a for i, a in enumerate(arrays)})
    return [a.astype(np.float32) for a in arrays]


def read_weights_into(model, path):
    """Assigns the arrays of `path` to `model`, refusing any that do not fit it.

    `np.load` with its default `allow_pickle=False`: a hostile file can hold only arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            names = [str(n) for n in stored["names"]]
            arrays = [stored[f"w{i}"] for i in range(len(names))]
    except Exception as e:
        raise UserInputError(f"cannot read feature net weights {path} ({type(e).__name__}): "
                             "damaged or not written by write_weights") from None
    variables = model.weights
    if len(arrays) != len(variables) or any(
            tuple(a.shape) != tuple(v.shape) for a, v in zip(arrays, variables)):
        raise UserInputError(f"feature net weights {path} do not fit the network built from "
                             "code (another architecture): retrain them")
    for array, variable in zip(arrays, variables):
        variable.assign(array.astype(variable.dtype))
