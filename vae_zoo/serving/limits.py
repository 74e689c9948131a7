"""How much one request may ask of the server, and how many run at once.

Every limit is checked from what a request declares, before anything of that size is allocated,
and an answer over a limit is RESOURCE_EXHAUSTED (REST 429) naming the limit and its flag.
"""

import asyncio
import contextlib
import dataclasses
import math
from concurrent import futures

import numpy as np

from vae_zoo.serving.errors import ServingError

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    """The defaults are those of `python -m export.serve`; docs/serving-limits.md explains them."""

    max_request_bytes: int = 64 * MIB  # REST body, gRPC message, and the inputs' declared size
    max_batch_size: int = 1024  # dim 0 of every input, and a count such as `sample`'s n
    max_output_bytes: int = 16 * MIB  # the outputs a request asks for, as tensors
    max_concurrent_requests: int = 4  # predict requests parsed and run at once (REST + gRPC)
    max_queued_requests: int = 16  # more may wait for a turn; beyond that, refused at once
    read_timeout_seconds: float = 30.0  # to receive one request once it has started
    idle_timeout_seconds: float = 75.0  # a connection with no request in flight is closed


def exhausted(what, value, limit, flag):
    return ServingError(
        "RESOURCE_EXHAUSTED", f"{what} is {value}, over the limit of {limit} (--{flag})")


def declared_bytes(shape, dtype):
    """Bytes a tensor of this shape would take; Python ints, so no overflow on a hostile shape."""
    return math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize


def check_inputs(shapes, specs, limits):
    """`shapes`: `{name: declared shape}` of a request's inputs, checked before they exist as
    arrays (their size as the signature's dtypes; decoding may briefly take twice that)."""
    total = sum(declared_bytes(shape, specs[name].dtype.as_numpy_dtype)
                for name, shape in shapes.items())
    if total > limits.max_request_bytes:
        raise exhausted("The inputs' size in bytes", total, limits.max_request_bytes,
                        "max_request_bytes")
    batch = max([shape[0] for shape in shapes.values() if len(shape)], default=1)
    if batch > limits.max_batch_size:
        raise exhausted("Batch size", batch, limits.max_batch_size, "max_batch_size")


def batch_of(arrays, limits):
    """The batch of outputs that checked inputs ask for: the largest dim 0 of the batched inputs
    or the value of a scalar integer input, taken as a count of outputs (as `sample`'s n)."""
    batch = max([len(a) for a in arrays.values() if a.ndim], default=1)
    for name, array in arrays.items():
        if array.ndim == 0 and array.dtype.kind in "iu":
            count = int(array)
            if count > limits.max_batch_size:
                raise exhausted(f"Input '{name}' (a count of outputs)", count,
                                limits.max_batch_size, "max_batch_size")
            batch = max(batch, count)
    return batch


def check_outputs(output_specs, batch, limits, arrays=None):
    """Checks the outputs' size: estimated from the signature's `{name: (shape, dtype)}` and the
    batch before the run (unknown dims other than the first count as 1), and, with `arrays`, the
    real outputs after it, before they are encoded (REST's JSON takes several times more)."""
    if arrays is None:
        total = sum(declared_bytes([batch if d is None else d for d in shape[:1]] +
                                   [1 if d is None else d for d in shape[1:]], dtype)
                    for shape, dtype in output_specs.values())
    else:
        total = sum(a.nbytes for a in arrays.values())
    if total > limits.max_output_bytes:
        raise exhausted("The outputs' size in bytes", total, limits.max_output_bytes,
                        "max_output_bytes")


class Gate:
    """At most `max_concurrent_requests` predict requests run at once, REST and gRPC together, and
    at most `max_queued_requests` more wait; any more are refused at once. A request counts from
    before its body is read, so the memory requests hold is bounded by the limits times
    (concurrent + queued). Used from the server's one event loop."""

    def __init__(self, limits):
        self.limits = limits
        self._turns = asyncio.Semaphore(limits.max_concurrent_requests)
        self._executor = futures.ThreadPoolExecutor(
            limits.max_concurrent_requests, thread_name_prefix="predict")
        self.in_flight = 0

    @contextlib.contextmanager
    def admit(self):
        capacity = self.limits.max_concurrent_requests + self.limits.max_queued_requests
        if self.in_flight >= capacity:
            raise ServingError(
                "RESOURCE_EXHAUSTED",
                f"Too many requests: {capacity} in flight, the limit "
                f"(--max_concurrent_requests={self.limits.max_concurrent_requests} "
                f"plus --max_queued_requests={self.limits.max_queued_requests})")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def run(self, function, *args):
        """Runs an admitted request's parsing, graph and encoding on a worker thread, in turn."""
        async with self._turns:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
