"""What the representation holds: reconstruction error and active units (Burda et al., 2016)."""

import keras
import numpy as np

from vae_zoo.evaluation import register_metric

ACTIVE_UNIT_THRESHOLD = 0.01  # a unit is active if Cov_x(E_q[z_i]) > 0.01


def representations(model, batches, limit=None):
    """`model.representation` of the examples of `batches` (up to `limit`), as one array."""
    codes, seen = [], 0
    for batch in batches:
        if limit is not None and seen >= limit:
            break
        codes.append(keras.ops.convert_to_numpy(model.representation(batch["x"])))
        seen += len(codes[-1])
    codes = np.concatenate(codes)
    return codes if limit is None else codes[:limit]


@register_metric("latents")
def latent_statistics(model, batches, settings=None):
    """The reconstruction MSE, the active-unit count and the variance of each code dimension."""
    codes, squared_errors, count = [], 0.0, 0
    for batch in batches:
        x = batch["x"]
        code = model.representation(x)
        squared_errors += float(keras.ops.sum((model.decode(code) - x) ** 2))
        count += int(np.prod(x.shape))
        codes.append(keras.ops.convert_to_numpy(code))
    variances = np.concatenate(codes).reshape(-1, codes[0].shape[-1]).var(axis=0)
    return {
        "reconstruction_mse": squared_errors / count,
        "active_units": int((variances > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": int(len(variances)),
        "latent_mean_variances": [round(float(v), 4) for v in variances],
    }
