"""The precision rule every network follows.

Hidden layers compute in the model's dtype policy (e.g. `mixed_bfloat16`); the posterior head and
the parameters of p(x|z) are float32 whatever that policy is, because the KL, the log-likelihood
and the importance weights sum hundreds of terms and bfloat16 keeps only three significant digits.
"""

import keras


def float32_params(params):
    """Casts the decoder's output (logits or means) to float32, as its last layer."""
    return keras.layers.Activation("linear", dtype="float32", name="params")(params)
