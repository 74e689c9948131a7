"""Where a training step's wall time goes, read from one process's TensorFlow profiler trace.

The trace is the `.xplane.pb` file that `tf.profiler.experimental.stop()` writes (the zoo's
`train.profile_steps`). Its host plane holds one line per thread and, on each, timed events:
op kernels (named `op_name:OpType`), the runtime's own events (`ExecutorState::Process`,
`EagerExecute`, the tf.function call), tf.data's, the collective executor's, and the training
loop's step markers (`train`, with `step_num`).

Every instant of the window is given to one category, the first of these that is active then on
any thread:

1. compute: an op kernel other than a collective on a thread other than tf.data's (convolutions,
   matmuls, element-wise ops, their gradients, the optimizer's updates);
2. collectives: a collective kernel (`CollectiveReduceV2`, from its start to its done callback,
   so waiting inside it for the peer counts here) or any event of the collective executor
   (its `collective_ops` thread, `CollectiveExecutor::*`, the ring's `Loop`);
3. input: tf.data (its threads, and the main thread's iterator `GetNext` and `Optional*` ops);
4. tf.function call: any other event on the main thread (the tf.function call and its executor
   before and between kernels, eager ops) or the executor's own events on other threads;
5. host Python: nothing above: the main thread is in Python (the loop, callbacks, converting the
   logs) or the process is not running at all (another process has its core).

So collectives count only the time they do not overlap compute: with one core per worker that is
the all-reduce's own work plus the wait for the slower peer. Traces of workers on one machine
share a clock, which measures that wait apart (`peer_wait_ms`): for each collective of each step,
the time from this worker's start of it to the last worker's (a collective launched while
backpropagation still runs, with `bytes_per_pack`, hides part of that wait behind compute). The window runs from the end of the
first traced step to the end of the last (whole periods, each holding one batch fetch, the
callbacks and one step), and every number is the mean per step.
"""

import bisect
import collections
from pathlib import Path

CATEGORIES = ("compute", "collectives", "input", "tf.function call", "host Python")
STEP_MARKER = "train"  # `vae_zoo.training.loop.TraceWindow.step`


def category(line_name, event_name, main_thread):
    """The index in CATEGORIES of one event, or None for events that mark no work of their own
    (the step markers, thread-pool bookkeeping)."""
    if event_name == STEP_MARKER or event_name.startswith("ThreadpoolListener"):
        return None
    op_type = event_name.rpartition(":")[2] if _is_kernel(event_name) else None
    collective = ("Collective", "BaseCollectiveExecutor")
    if (line_name.startswith("collective_ops") or event_name.startswith(collective)
            or (op_type or "").startswith("Collective")):
        return 1
    if line_name.startswith("tf_data") or "Iterator" in event_name or "Optional" in event_name:
        return 2
    if op_type is not None:
        return 0
    if main_thread or event_name.startswith(("Executor", "FunctionRun")):
        return 3
    return None


def _is_kernel(name):
    """An op kernel's event is `op_name:OpType`; the runtime's are `Class::method` or words."""
    head, colon, op_type = name.rpartition(":")
    return bool(colon) and bool(head) and not head.endswith(":") and op_type.isidentifier()


def read_space(path):
    """The XSpace proto of a trace file (imported here: it imports all of TensorFlow)."""
    try:
        from tsl.profiler.protobuf import xplane_pb2
    except ImportError:  # TensorFlow ships it inside its own package
        from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    return space


def breakdown(path):
    """`{"steps", "step_ms", <category>_ms..., "top_ops_ms", "arrivals"}` per step of one trace
    file (`top_ops_ms`: the kernels and collective events that took longest, summed over
    threads; `arrivals`: when each collective kernel started, for `add_peer_waits`)."""
    plane = next(p for p in read_space(path).planes if p.name == "/host:CPU")
    names = {key: meta.name for key, meta in plane.event_metadata.items()}

    def spans(line):
        origin = line.timestamp_ns * 1000
        for event in line.events:
            start = origin + event.offset_ps
            yield names[event.metadata_id], start, start + event.duration_ps

    main = next(line for line in plane.lines
                if any(names[e.metadata_id] == STEP_MARKER for e in line.events))
    step_ends = sorted(end for name, _, end in spans(main) if name == STEP_MARKER)
    if len(step_ends) < 2:
        raise ValueError(f"{path}: fewer than 2 traced steps")
    begin, finish = step_ends[0], step_ends[-1]
    edges, totals, collectives = [], collections.Counter(), []
    for line in plane.lines:
        for name, start, end in spans(line):
            if begin < start <= finish and name.endswith(":CollectiveReduceV2"):
                collectives.append((start, name))
            start, end = max(start, begin), min(end, finish)
            kind = category(line.name, name, line is main)
            if kind is None or end <= start:
                continue
            edges += [(start, 1, kind), (end, -1, kind)]
            if kind < 2:  # kernels and collectives: the ops worth naming
                totals[name] += end - start
    seconds = _sweep(sorted(edges), begin, finish)
    arrivals, seen = {}, collections.Counter()
    for start, name in sorted(collectives):  # the n-th reduce of `name` in step `step`
        key = (bisect.bisect_left(step_ends, start), name)
        arrivals[(*key, seen[key])] = start
        seen[key] += 1
    steps = len(step_ends) - 1
    ms = 1e-9 / steps  # picoseconds per window -> milliseconds per step
    return {"steps": steps, "step_ms": round((finish - begin) * ms, 2),
            **{f"{name}_ms": round(seconds[i] * ms, 2) for i, name in enumerate(CATEGORIES)},
            "top_ops_ms": {name: round(t * ms, 2) for name, t in totals.most_common(12)},
            "arrivals": arrivals}


def add_peer_waits(parts):
    """Adds to each worker's breakdown (`{worker: breakdown}`, traces taken on one machine,
    whose clocks agree) `peer_wait_ms`: per step, how long its collectives waited for the
    last worker to start the same collective (the same op in the same step), replacing
    `arrivals`. 0 when only one worker was traced."""
    arrivals = {worker: p.pop("arrivals") for worker, p in parts.items()}
    shared = set.intersection(*(set(a) for a in arrivals.values()))
    for worker, mine in arrivals.items():
        wait = sum(max(a[key] for a in arrivals.values()) - mine[key] for key in shared)
        parts[worker]["peer_wait_ms"] = round(wait * 1e-9 / parts[worker]["steps"], 2)
    return parts


def _sweep(edges, begin, finish):
    """Picoseconds per category: each instant goes to the lowest-numbered active category, and
    to the last (host Python) when none is active."""
    active, seconds = [0] * len(CATEGORIES), [0] * len(CATEGORIES)
    now = begin
    for time, change, kind in edges:
        current = next((i for i, n in enumerate(active) if n), len(CATEGORIES) - 1)
        seconds[current] += time - now
        now = time
        active[kind] += change
    seconds[-1] += finish - now
    return seconds


def worker_traces(profile_dir):
    """`{worker folder name: its .xplane.pb}` under a run's `profile/` (the newest of each)."""
    return {folder.name: max(folder.glob("plugins/profile/*/*.xplane.pb"))
            for folder in sorted(Path(profile_dir).iterdir()) if folder.is_dir()}
