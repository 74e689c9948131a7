"""A scaling model of synchronous data-parallel training, fitted to measured all-reduces.

    all-reduce(N, S, rate, delay) = fixed + hops * (hop + k * delay) + moved * (a * 8 / rate + b)
        hops  = 2 (N - 1)        the ring's sequential steps (reduce-scatter, then all-gather)
        moved = 2 (N - 1) / N S  the bytes each worker sends (and receives) for S bytes of gradient
    step(N, b) = compute(b) + all-reduce(N, S, rate, delay) + other     (N > 1; step(1, b) = compute(b))
        compute(b) = compute(b1) * b / b1      (one process's measured step at batch b1)

`fixed` is a call's cost with no peer (a 1-worker all-reduce), `hop` the software's cost of one
ring step (an RPC), `k` how many one-way delays a step waits (2: a request and its reply), `a`
the wire's bytes per payload byte (headers: a little over 1) at the shaped `rate` in bit/s, `b`
the host's ms per byte moved (gRPC's copies and the sum, what bounds an unshaped link), and
`other` what a training step pays for having peers beyond the gradient all-reduce (0 in the
plain model). The terms add up: the model ignores any overlap of the all-reduce with compute or of
the wire with the host's copies, and knows the N dependence only from the ring algorithm (the
measurements are of 1 and 2 workers). `benchmarks/network.py` measures and fits it.
"""

import dataclasses
import math

import numpy as np

# The fitted terms, in the order of `features`; `proxy_*` absorb the delaying proxy's own costs
# (measured with and without delay, so that `k` is the delay's effect alone).
TERMS = ("fixed_ms", "hop_ms", "delay_factor", "wire_factor", "host_ms_per_mb",
         "proxy_hop_ms", "proxy_ms_per_mb")


@dataclasses.dataclass(frozen=True)
class Link:
    """A network: `rate` in bit/s (None: not shaped), one-way added `delay_ms`, and whether
    the traffic crosses the delaying proxy."""

    rate: float | None = None
    delay_ms: float = 0.0
    proxy: bool = False


def hops(n):
    return 2 * (n - 1)


def moved_bytes(n, nbytes):
    return 2 * (n - 1) / n * nbytes


def features(n, nbytes, link):
    """The row of the design matrix of one all-reduce: one column per term of `TERMS`."""
    moved = moved_bytes(n, nbytes)
    wire_ms = 1e3 * 8 * moved / link.rate if link.rate else 0.0
    return [1.0, hops(n), hops(n) * link.delay_ms, wire_ms, moved / 1e6,
            hops(n) * link.proxy, moved / 1e6 * link.proxy]


def fit(measurements):
    """Least squares (non-negative, relative error: each row weighted by 1 / its time) of the
    terms to `measurements`, a list of `(n, nbytes, link, ms)`. Returns `{term: value}` for the
    terms the data determine; a term whose column is all zero (no proxy measured) is 0."""
    from scipy.optimize import nnls

    x = np.array([features(n, nbytes, link) for n, nbytes, link, _ in measurements])
    y = np.array([ms for *_, ms in measurements])
    used = np.abs(x).sum(axis=0) > 0
    w = 1.0 / y
    coefficients, _ = nnls(x[:, used] * w[:, None], y * w)
    values = np.zeros(len(TERMS))
    values[used] = coefficients
    return dict(zip(TERMS, values.tolist()))


def all_reduce_ms(params, n, nbytes, link):
    if n == 1:
        return 0.0
    return float(np.dot([params[t] for t in TERMS], features(n, nbytes, link)))


def step_ms(params, n, nbytes, link, compute_ms, other_ms=0.0):
    """One training step of `n` workers each computing for `compute_ms`."""
    return compute_ms + (all_reduce_ms(params, n, nbytes, link) + other_ms if n > 1 else 0.0)


def scaling(params, nbytes, link, compute_ms, batch, n, global_batch=False, other_ms=0.0):
    """`(step ms, speed-up, efficiency)` of `n` workers against one process.

    `compute_ms` is one process's step at `batch`. With the per-worker batch fixed (`batch`
    each) the speed-up is in images/s: n * step(1) / step(n); with the global batch fixed
    (`batch` / n each) it is step(1) / step(n). Efficiency is the speed-up per worker."""
    per_worker = batch / n if global_batch else batch
    step = step_ms(params, n, nbytes, link, compute_ms * per_worker / batch, other_ms)
    speedup = (1 if global_batch else n) * compute_ms / step
    return step, speedup, speedup / n


def stops_paying(params, nbytes, link, compute_ms, batch, global_batch=False, other_ms=0.0,
                 floor=0.5, largest=4096):
    """`(first n with efficiency below floor, n of the largest speed-up)` over n = 2..largest
    (None for the first when efficiency never falls below it there)."""
    below, best, best_n = None, -math.inf, 1
    for n in range(2, largest + 1):
        _, speedup, efficiency = scaling(params, nbytes, link, compute_ms, batch, n,
                                         global_batch, other_ms)
        if below is None and efficiency < floor:
            below = n
        if speedup > best:
            best, best_n = speedup, n
    return below, best_n
