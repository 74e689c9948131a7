"""The precision rule every network follows.

Hidden layers compute in the model's dtype policy (e.g. `mixed_bfloat16`); the posterior head and
the parameters of p(x|z) are float32 whatever that policy is, because the KL, the log-likelihood
and the importance weights sum hundreds of terms and bfloat16 keeps only three significant digits.
"""

import keras


def in_precision(model, precision):
    """`model` with its hidden layers computing in `precision` and the same weights: `model`
    itself if it already does, else a copy (zoo models build every layer in their constructor,
    so the copy takes the weights without seeing data)."""
    if model.dtype_policy.name == precision:
        return model
    copy = type(model).from_config({**model.get_config(), "dtype": precision})
    copy.set_weights(model.get_weights())
    return copy


def float32_params(params):
    """Casts the decoder's output (logits or means) to float32, as its last layer."""
    return keras.layers.Activation("linear", dtype="float32", name="params")(params)
