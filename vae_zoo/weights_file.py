"""A model's weights as a plain .npz: the format of the presets and the shipped feature nets.

Every variable of `model.weights`, in order, as `w0`, `w1`, ... beside their `names`; floating
weights in float16 (half the bytes, a change of the test ELBO far below its Monte Carlo spread:
the preset cards measure it). Read with `np.load`'s `allow_pickle=False`, into a model built
from code: a hostile file can hold only arrays, and arrays that do not fit are refused.
"""

import numpy as np

from vae_zoo.errors import UserInputError


def write_weights(model, path):
    """Writes `model.weights` to `path` (.npz); float weights as float16. Returns the rounded model
    weights (what loading gives back), in the model's dtypes."""
    arrays = [np.asarray(w) for w in model.get_weights()]
    stored = [a.astype(np.float16) if np.issubdtype(a.dtype, np.floating) else a for a in arrays]
    with open(path, "wb") as f:
        np.savez_compressed(f, names=np.array([v.path for v in model.weights]),
                            **{f"w{i}": a for i, a in enumerate(stored)})
    return [s.astype(a.dtype) for s, a in zip(stored, arrays)]


def read_weights_into(model, path, label, mismatch="the weights do not match the model's config"):
    """Assigns the weights `write_weights` stored in `path` to `model`; one line
    (`UserInputError`) when the file is damaged or its arrays do not fit the model.

    Args:
        label: str. The file as messages name it (`conv_vae_mnist/weights.npz`).
        mismatch: str. What a misfit means and what to do, ending the message.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            names = [str(n) for n in stored["names"]]
            arrays = [stored[f"w{i}"] for i in range(len(names))]
    except Exception as e:  # a truncated zip, a missing array, not an .npz at all
        raise UserInputError(f"cannot read {label} ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}): not a weights file "
                             "of vae_zoo, or damaged") from None
    variables = model.weights
    if len(arrays) != len(variables):
        raise UserInputError(f"{label} holds {len(arrays)} weights but its model has "
                             f"{len(variables)}: {mismatch}")
    for name, array, variable in zip(names, arrays, variables):
        if tuple(array.shape) != tuple(variable.shape):
            raise UserInputError(f"{label}: weight {name} has shape {tuple(array.shape)} but the "
                                 f"model's {variable.path} has {tuple(variable.shape)}: {mismatch}")
    for array, variable in zip(arrays, variables):
        variable.assign(array.astype(variable.dtype))
