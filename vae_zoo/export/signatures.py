"""The serving signatures of every zoo model: their names, named inputs and named outputs.

| signature | input | outputs |
|---|---|---|
| serving_default, reconstruct | x: (batch, H, W, C) float32 in [0, 1] | reconstruction: mean of p(x|z) at z = E[q(z|x)] |
| encode | x | z_mean, z_log_var, z (one draw from q(z|x)) |
| decode | z: (batch, latent_dim) | x_mean: mean of p(x|z) |
| sample | n: int32 scalar | x_mean: n images decoded from z ~ N(0, I) |
"""

import tensorflow as tf

SIGNATURES = ("serving_default", "reconstruct", "encode", "decode", "sample")
# No random op inside: these can be compared to 1e-5 and quantised to int8.
DETERMINISTIC_SIGNATURES = ("serving_default", "reconstruct", "decode")


def serving_endpoints(model):
    """`{name: (function, input_signature)}` for `keras.export.ExportArchive.add_endpoint`."""
    x_spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="x")
    z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
    n_spec = tf.TensorSpec([], tf.int32, name="n")

    def reconstruct(x):
        return {"reconstruction": model.reconstruct(x)}

    def encode(x):
        z_mean, z_log_var = model.encode(x)
        return {"z_mean": z_mean, "z_log_var": z_log_var, "z": model.sampling((z_mean, z_log_var))}

    def decode(z):
        return {"x_mean": model.decode(z)}

    def sample(n):
        return {"x_mean": model.sample(n)}

    return {
        "serving_default": (reconstruct, [x_spec]),
        "reconstruct": (reconstruct, [x_spec]),
        "encode": (encode, [x_spec]),
        "decode": (decode, [z_spec]),
        "sample": (sample, [n_spec]),
    }
