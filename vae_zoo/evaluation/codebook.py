"""Codebook usage of a vector-quantised model, and how well its learned prior fits the codes."""

import keras
import numpy as np

from vae_zoo.evaluation import register_metric


def perplexity(counts):
    """exp(entropy) of the code frequencies: K when every code is used equally, 1 for one code."""
    p = np.asarray(counts, "float64") / np.sum(counts)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


@register_metric("codebook", requires=("discrete_codes",))
def codebook_usage(model, batches, settings=None):
    """Perplexity of the codes of the held-out images, the count of codes none of them uses, and
    the prior's -log p(codes) per image (nats) when the model has a learned prior."""
    counts = np.zeros(model.num_codes, "int64")
    nll, images = 0.0, 0
    for batch in batches:
        codes = model.codes(batch["x"])
        counts += np.bincount(keras.ops.convert_to_numpy(codes).ravel(),
                              minlength=model.num_codes)
        if model.capabilities.stages > 1:
            nll += float(keras.ops.sum(model.code_nll(codes, model.prior_logits(codes))))
        images += int(codes.shape[0])
    results = {"perplexity": perplexity(counts), "dead_codes": int((counts == 0).sum()),
               "num_codes": int(model.num_codes)}
    if model.capabilities.stages > 1:
        results["prior_nll"] = nll / images
    return results
