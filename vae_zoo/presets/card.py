"""What a preset's card measures about its stored weights: the test metrics, the change that float16
storage makes to the test ELBO, and the check ELBO on fixed test images that a test recomputes."""

import math
import os
import platform

import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import EvalSettings
from vae_zoo.evaluation import evaluate_metrics

CHECK_IMAGES = 500
CHECK_DRAWS = 4
CHECK_SEED = 0
# The check passes when a recomputed estimate is within this many standard deviations of the
# difference of two independent estimates (sqrt(2) x the card's Monte Carlo sd): 4 sd fail by
# chance with probability 6e-5, whatever random stream another TensorFlow version draws.
CHECK_SIGMAS = 4.0


def test_arrays(batches):
    """Every example of batched test data as numpy arrays: `x`, and `y` when it has labels."""
    parts = [{k: v for k, v in b.items() if k in ("x", "y")} for b in batches.as_numpy_iterator()]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def per_image_elbo(model, arrays, draws, seed, batch_size=500):
    """`(draws, n)`: each image's ELBO with one z ~ q(z|x) per draw, as the model's test step
    computes it. Seeded: two models of the same architecture draw the same noise."""
    tf.random.set_seed(seed)
    rows = []
    for _ in range(draws):
        parts = []
        for start in range(0, len(arrays["x"]), batch_size):
            batch = {k: tf.constant(v[start:start + batch_size]) for k, v in arrays.items()}
            parts.append(model.loss_terms(batch, model(batch, training=False))["elbo"].numpy())
        rows.append(np.concatenate(parts))
    return np.stack(rows).astype("float64")


def check_elbo(model, arrays, draws=CHECK_DRAWS, seed=CHECK_SEED):
    """The mean ELBO over `draws` x the images, and the Monte Carlo sd of that mean (the images
    are fixed: only the draws of z vary)."""
    elbo = per_image_elbo(model, arrays, draws, seed)
    mc_sd = math.sqrt(elbo.var(axis=0, ddof=1).mean() / elbo.size)
    return {"elbo": round(float(elbo.mean()), 4), "elbo_mc_sd": round(mc_sd, 4),
            "images": len(arrays["x"]), "draws": draws, "seed": seed}


def check_tolerance(check):
    """How far a recomputed check ELBO may be from the card's (see CHECK_SIGMAS)."""
    return CHECK_SIGMAS * math.sqrt(2.0) * check["elbo_mc_sd"]


def float16_change(model, stored_weights, arrays, seed=CHECK_SEED):
    """Test ELBO of the stored (float16-rounded) weights minus that of the model's own, with the
    same z noise for both (paired), on every test image. Leaves the stored weights in `model`."""
    before = per_image_elbo(model, arrays, 1, seed)[0]
    model.set_weights(stored_weights)
    difference = per_image_elbo(model, arrays, 1, seed)[0] - before
    return {"elbo_change_nats": float(f"{difference.mean():.2g}"),
            "sd_of_change": float(f"{difference.std(ddof=1) / math.sqrt(len(difference)):.2g}"),
            "images": len(difference),
            "how": "stored minus float32 weights, the same z draw per image (paired)"}


def test_metrics(model, batches, eval_config, num_examples):
    """The zoo's held-out metrics (those the training run reports), as the card lists them."""
    settings = EvalSettings(iw_samples=eval_config.iw_samples,
                            iw_examples=eval_config.iw_examples, num_examples=num_examples)
    results = evaluate_metrics(model, batches, settings)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}


def machine():
    """The machine, as a card records it."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()}"
