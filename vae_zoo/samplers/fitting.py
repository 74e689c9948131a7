"""Shared by the trained samplers (`maf`, `two_stage`): standardised codes, a held-out split and
a bounded training loop that reports its progress."""

import time

import numpy as np
import tensorflow as tf

from vae_zoo.samplers.gaussian import cholesky
from vae_zoo.samplers.gaussian import gaussian_log_prob

HELD_OUT = 0.1  # of the codes, to report held-out NLL against a full-covariance Gaussian's


def standardisation(codes):
    """`(shift, scale)`: the codes' mean and sd per latent. Trained on (codes - shift) / scale,
    one learning rate and initialisation fit every model's code scale (an autoencoder's codes
    have sd about 3, a VAE's about 1); a latent the encoder does not use keeps scale 1."""
    shift, scale = codes.mean(axis=0), codes.std(axis=0)
    return shift, np.where(scale > 1e-6, scale, 1.0)


def split(codes, seed):
    """`(train, held_out)`: a random tenth held out (at least one code, none from 10 codes)."""
    order = np.random.default_rng(seed).permutation(len(codes))
    held = int(len(codes) * HELD_OUT) if len(codes) >= 20 else 0
    return codes[order[held:]], codes[order[:held]]


def train(step, evaluate, codes, held_out, steps, batch_size, seed, log, name):
    """Runs `steps` optimizer steps `step(batch) -> loss` on random batches of `codes`; logs the
    training and held-out NLL (nats per code, `evaluate(codes)`) five times, beside a
    full-covariance Gaussian's fitted to the same training codes. Returns the last held-out NLL."""
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, len(codes))
    gaussian = None
    if len(held_out):
        mean = codes.mean(axis=0)
        factor = cholesky(np.cov(codes, rowvar=False, bias=True).reshape(len(mean), len(mean)))
        gaussian = float(-gaussian_log_prob(held_out, mean, factor).mean())
    report_every = max(1, steps // 5)
    start, losses, held_nll = time.perf_counter(), [], None
    for i in range(1, steps + 1):
        batch = codes[rng.integers(0, len(codes), batch_size)]
        losses.append(float(step(tf.constant(batch, tf.float32))))
        if i % report_every == 0 or i == steps:
            line = f"{name}: step {i}/{steps}, training NLL {np.mean(losses[-report_every:]):.3f}"
            if gaussian is not None:
                held_nll = float(evaluate(held_out))
                line += (f", held-out NLL {held_nll:.3f} (a full-covariance Gaussian's: "
                         f"{gaussian:.3f}) nats per code")
            log(f"{line}, {time.perf_counter() - start:.0f} s")
    return {"held_out_nll": held_nll, "gaussian_held_out_nll": gaussian}
