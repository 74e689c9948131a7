"""Multi-worker training over a network that is not loopback, and a scaling model fitted to it.

    sudo python benchmarks/network.py [--rounds 2] [--conditions loopback veth 10gbit 1gbit ...]
                                      [--models conv_vae dense_vae] [--per-worker-batch 128]
    sudo python benchmarks/network.py --add-to benchmarks/results/network.json [--replace] ...
    python benchmarks/network.py --tables-from benchmarks/results/network.json

The 2 workers run in two network namespaces joined by a veth pair (10.77.0.1 and 10.77.0.2),
each started with `ip netns exec` and held to one core (`taskset`). A condition names the link:
`loopback` (no namespaces, 127.0.0.1), `veth` (the pair, not shaped), a rate such as `10gbit`,
`1gbit` or `100mbit` (a `tbf` qdisc on both ends: this kernel has no `netem`), and a `+Nms` suffix
for N ms of one-way delay added by a small asyncio TCP proxy in each worker's namespace, in
front of its peer's port (`+0ms` crosses the proxy without delay, to tell its own cost apart).

It measures, in interleaved rounds (medians):
1. the all-reduce (`benchmarks/multi_worker.py`'s, MultiWorkerMirroredStrategy, RING) of every
   zoo model's gradient (its trainable float32, models built from zoo_configs/*.yaml) and of a
   sweep of sizes, under every condition, and with 1 worker (the call's cost with no peer);
2. the real training step (`train.py`, the embedded MNIST sample, 1 epoch) of --models with 2
   workers under --step-conditions, and of one process for every zoo model (their compute).
Then it fits `benchmarks/scaling_model.py` to the all-reduces alone, checks its step prediction
against the 2-worker steps (which the fit did not see), and predicts step, speed-up and
efficiency at 2, 4, 8 and 16 workers for every zoo model. Writes
benchmarks/results/network.{md,json} (and network.png).

The namespaces are removed at the end whatever happens, and leftovers of a killed run (named
`vaezoo-<pid>-*`, the pid no longer running) are removed at the start. Needs root and iproute2
(`ip`, `tc`): without them it says so in one line and exits with code 2.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import scaling_model  # noqa: E402
from benchmarks.common import RESULTS  # noqa: E402
from benchmarks.common import write_results  # noqa: E402
from benchmarks.multi_worker import all_reduce_ms  # noqa: E402
from benchmarks.multi_worker import count_params  # noqa: E402
from benchmarks.multi_worker import loopback_workers  # noqa: E402
from benchmarks.multi_worker import pinned  # noqa: E402
from benchmarks.multi_worker import train_once  # noqa: E402

PREFIX = "vaezoo-"
SUBNET = "10.77.0"
WORKER_PORT = 2222
PROXY_PORT = 3000  # + the peer's index, on 127.0.0.1 in each worker's namespace
DEVICE = "vz0"
SWEEP = [1024, 16384, 131072, 524288, 4194304]  # float32 counts: 4 KB to 16 MB
BUDGET_SECONDS = 1.5  # about how long each size is timed under each condition
# Models whose step this script cannot tell from a train.py run: vq_vae trains a PixelCNN prior
# after its autoencoder (`train.prior_epochs` >= 1), and `timing` adds both stages' steps.
NO_STEP = {"vq_vae": "its run trains a PixelCNN prior after the autoencoder, in the same "
                     "step timing"}


def missing_privileges():
    """Why this machine cannot build the network (one line), or None when it can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and qdiscs): run it with sudo"
    for tool in ("ip", "tc", "taskset"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (iproute2 / util-linux), which is not installed"
    return None


def _ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers():
    """Deletes the namespaces (and kills what runs in them) of runs whose process has died."""
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        match = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if match and not _alive(int(match.group(1))):
            _delete_namespace(name)


def _delete_namespace(name):
    for pid in _ip("netns", "pids", name, check=False).split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", name, check=False)


def parse_rate(text):
    """`10gbit`, `1gbit`, `100mbit`, `500kbit` -> bit/s (tc's units); None for none."""
    if text in (None, "", "none"):
        return None
    match = re.fullmatch(r"([0-9.]+)([kmg]?)bit", text.lower())
    if not match:
        raise ValueError(f"not a rate like 1gbit or 100mbit: {text!r}")
    return float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2)]


class Network:
    """`n` network namespaces, each with one worker address `10.77.0.<i+1>` (a veth pair for 2,
    a bridge in a switch namespace for more), on which `shape` puts a tbf qdisc and `delay` a
    delaying TCP proxy. A context manager: leaving it removes everything it made."""

    def __init__(self, n=2, cores=None):
        self.n = n
        self.names = [f"{PREFIX}{os.getpid()}-{i}" for i in range(n)]
        self.switch = f"{PREFIX}{os.getpid()}-sw" if n > 2 else None
        self.cores = cores or [i % (os.cpu_count() or 1) for i in range(n)]
        self.addresses = [f"{SUBNET}.{i + 1}" for i in range(n)]
        self.rate, self.delay_ms, self.proxies = None, None, []

    def __enter__(self):
        remove_leftovers()
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _create(self):
        for name in self.names + ([self.switch] if self.switch else []):
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
        if self.switch is None:
            _ip("link", "add", DEVICE, "netns", self.names[0], "type", "veth", "peer", "name",
                DEVICE, "netns", self.names[1])
        else:
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, name in enumerate(self.names):
                _ip("link", "add", DEVICE, "netns", name, "type", "veth", "peer", "name",
                    f"port{i}", "netns", self.switch)
                _ip("-n", self.switch, "link", "set", f"port{i}", "master", "br0", "up")
        for name, address in zip(self.names, self.addresses):
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", DEVICE)
            _ip("-n", name, "link", "set", DEVICE, "up")

    def close(self):
        self._stop_proxies()
        for name in self.names + ([self.switch] if self.switch else []):
            _delete_namespace(name)

    def shape(self, rate):
        """Every worker's outgoing traffic limited to `rate` (tc's `10gbit`, `1gbit`...; None:
        not shaped) by a tbf qdisc with a burst of 1 ms of traffic (at least 32 KB)."""
        for name in self.names:
            if rate is None:
                subprocess.run(["tc", "-n", name, "qdisc", "del", "dev", DEVICE, "root"],
                               capture_output=True)
            else:
                burst = max(int(parse_rate(rate) / 8 / 1000), 32 * 1024)
                subprocess.run(["tc", "-n", name, "qdisc", "replace", "dev", DEVICE, "root", "tbf",
                                "rate", rate, "burst", str(burst), "latency", "50ms"],
                               check=True, capture_output=True)
        self.rate = rate

    def qdiscs(self):
        """`tc qdisc show` of every worker's device: what is applied now."""
        return [subprocess.run(["tc", "-n", name, "qdisc", "show", "dev", DEVICE],
                               capture_output=True, text=True).stdout.strip()
                for name in self.names]

    def delay(self, ms):
        """Routes every worker's traffic to each peer through a proxy in its own namespace that
        holds each chunk `ms` ms in both directions (`ms` 0: the proxy without delay; None:
        straight to the peer)."""
        self._stop_proxies()
        self.delay_ms = ms
        if ms is None:
            return
        for i in range(self.n):
            for j in range(self.n):
                if i == j:
                    continue
                command = [sys.executable, str(Path(__file__).resolve()), "proxy",
                           str(PROXY_PORT + j), f"{self.addresses[j]}:{WORKER_PORT}", str(ms)]
                process = subprocess.Popen(self.run_in(i, pinned(self.cores[i], command)),
                                           stdout=subprocess.PIPE, text=True)
                self.proxies.append(process)
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError("the delaying proxy did not start")

    def _stop_proxies(self):
        for process in self.proxies:
            process.kill()
            process.wait()
        self.proxies = []

    def run_in(self, i, command):
        return ["ip", "netns", "exec", self.names[i], *command]

    def workers(self, n=None):
        """How `n` (default all) workers run here: `(commands(command), envs)` for
        benchmarks/multi_worker.py, worker i in namespace i on its core, its TF_CONFIG naming
        each peer by its address, or by the proxy in front of it."""
        from vae_zoo.distribute.cluster import make_tf_config

        n = n or self.n
        envs = []
        for i in range(n):
            addresses = [f"{self.addresses[j]}:{WORKER_PORT}" if j == i or self.delay_ms is None
                         else f"127.0.0.1:{PROXY_PORT + j}" for j in range(n)]
            envs.append({**os.environ, "TF_CONFIG": make_tf_config(addresses, i)})
        return (lambda command: [self.run_in(i, pinned(self.cores[i], command))
                                 for i in range(n)]), envs

    def throughput(self, nbytes=50_000_000):
        """Gbit/s of one TCP stream from worker 0 to worker 1 (through the proxy if any)."""
        sink = subprocess.Popen(self.run_in(1, [sys.executable, "-c", _SINK, str(WORKER_PORT)]),
                                stdout=subprocess.PIPE, text=True)
        try:
            assert sink.stdout.readline().strip() == "ready"
            target = (f"127.0.0.1:{PROXY_PORT + 1}" if self.delay_ms is not None
                      else f"{self.addresses[1]}:{WORKER_PORT}")
            out = subprocess.run(self.run_in(0, [sys.executable, "-c", _SOURCE, target,
                                                 str(nbytes)]),
                                 capture_output=True, text=True, timeout=300, check=True).stdout
            return float(out.strip())
        finally:
            sink.kill()
            sink.wait()


_SINK = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); print("ready", flush=True)
c, _ = s.accept()
while c.recv(1 << 20):
    pass
c.sendall(b"k")
"""
_SOURCE = """
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1); size = int(sys.argv[2])
c = socket.create_connection((host, int(port))); chunk = b"x" * (1 << 20); sent = 0
start = time.perf_counter()
while sent < size:
    c.sendall(chunk); sent += len(chunk)
c.shutdown(socket.SHUT_WR); c.recv(1)
print(8 * sent / (time.perf_counter() - start) / 1e9)
"""


async def _pipe(reader, writer, delay):
    """Copies reader to writer, each chunk leaving `delay` seconds after it came."""
    loop, queue = asyncio.get_running_loop(), asyncio.Queue()

    async def read():
        while data := await reader.read(1 << 18):
            queue.put_nowait((loop.time() + delay, data))
        queue.put_nowait((None, b""))

    async def write():
        while True:
            due, data = await queue.get()
            if due is None:
                break
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve_proxy(port, target, delay_ms):
    host, target_port = target.rsplit(":", 1)

    async def handle(reader, writer):
        while True:  # the peer's server may not listen yet: TensorFlow retries, so do we
            try:
                up_reader, up_writer = await asyncio.open_connection(host, int(target_port))
                break
            except OSError:
                await asyncio.sleep(0.05)
        for w in (writer, up_writer):  # gRPC's small messages must not wait for Nagle
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(_pipe(reader, up_writer, delay_ms / 1e3),
                             _pipe(up_reader, writer, delay_ms / 1e3))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def parse_condition(text):
    """`loopback`, `veth`, `1gbit`, `1gbit+2ms`, `veth+0ms` -> (rate or None, delay ms or None)."""
    base, _, delay = text.partition("+")
    rate = None if base in ("loopback", "veth") else base
    parse_rate(rate)
    if delay and not re.fullmatch(r"[0-9.]+ms", delay):
        raise ValueError(f"not a delay like +2ms: {text!r}")
    return rate, (float(delay[:-2]) if delay else None)


def link_of(condition):
    rate, delay = parse_condition(condition)
    return scaling_model.Link(rate=parse_rate(rate), delay_ms=delay or 0.0,
                              proxy=delay is not None)


def repeats_for(nbytes, condition):
    """How many times to time an all-reduce of `nbytes`: about BUDGET_SECONDS, 3 to 40."""
    rate = parse_rate(parse_condition(condition)[0]) or 8e9
    guess = 0.002 + 8 * nbytes / rate + nbytes / 1e9
    return max(3, min(40, int(BUDGET_SECONDS / guess)))


def sizes_for(sizes, condition, max_seconds=1.0):
    """The sizes whose one all-reduce takes at most about `max_seconds` under `condition`."""
    rate = parse_rate(parse_condition(condition)[0]) or 8e9
    return [s for s in sizes if 8 * 4 * s / rate <= max_seconds]


class Conditions:
    """Runs each condition's measurements in a Network set up for it (or on loopback)."""

    def __init__(self, net):
        self.net = net

    def workers(self, condition, n=2):
        if condition == "loopback" or n == 1:
            return loopback_workers(n)
        rate, delay = parse_condition(condition)
        if self.net.rate != rate:
            self.net.shape(rate)
        if self.net.delay_ms != delay:
            self.net.delay(delay)
        return self.net.workers(n)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conditions", nargs="*",
                        default=["loopback", "veth", "10gbit", "1gbit", "100mbit", "1gbit+0ms",
                                 "1gbit+2ms"], help="links of the all-reduce microbenchmark")
    parser.add_argument("--step-conditions", nargs="*",
                        default=["loopback", "veth", "10gbit", "1gbit", "100mbit", "1gbit+2ms"],
                        help="links of the 2-worker training steps")
    parser.add_argument("--models", nargs="+", default=["conv_vae", "dense_vae"],
                        help="zoo models whose 2-worker step is measured")
    parser.add_argument("--per-worker-batch", type=int, default=128)
    parser.add_argument("--global-batch-conditions", nargs="*", default=["veth", "1gbit"],
                        help="links where the first model also trains at the same global batch "
                             "(--per-worker-batch split over the 2 workers)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-steps", action="store_true", help="only the all-reduces")
    parser.add_argument("--more-workers", type=int, nargs="*", default=[],
                        help="after the rounds, all-reduces of N workers (a bridge joins their "
                             "namespaces) on veth and 1gbit: the model's N dependence, not fitted")
    parser.add_argument("--zoo", nargs="*", help="zoo models whose one-process step (compute) is "
                        "measured in the first round (default: all)")
    parser.add_argument("--add-to", metavar="JSON",
                        help="a network.json to add this run's measurements to before the "
                             "tables are made again with that run's settings")
    parser.add_argument("--tables-from", metavar="JSON",
                        help="only make the tables again from a saved network.json (measures "
                             "nothing, needs no root)")
    parser.add_argument("--replace", action="store_true",
                        help="with --add-to: this run's rows replace those of the same model, "
                             "link and batch (or link and size) instead of adding to them")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.tables_from:
        data = json.loads(Path(args.tables_from).read_text())
        report(data, argparse.Namespace(**{**vars(args), **data["args"], "out": args.out}))
        return 0
    problem = missing_privileges()
    if problem:
        print(f"benchmarks/network.py: {problem}", file=sys.stderr)
        return 2
    for condition in set(args.conditions) | set(args.step_conditions):
        parse_condition(condition)

    zoo = sorted(p.stem for p in (ROOT / "zoo_configs").glob("*.yaml"))
    params = {name: count_params(name) for name in zoo}
    zoo = [m for m in zoo if m not in NO_STEP] if args.zoo is None else args.zoo
    print("trainable float32 per model:", params, flush=True)
    sizes = sorted(set(SWEEP) | set(params.values()))
    loads = [uptime()]
    data = {"parameters": params, "sizes": sizes, "all_reduce": [], "steps": [],
            "throughput_gbit_s": {}, "qdiscs": {},
            # not --out: its default is this machine's absolute path (tests/test_docs_paths.py)
            "args": {k: v for k, v in vars(args).items() if k != "out"}}
    folder = tempfile.mkdtemp(prefix="network-bench-")
    try:
        with Network(2) as net:
            conditions = Conditions(net)
            for round_ in range(1, args.rounds + 1):
                measure_all_reduces(conditions, args.conditions, sizes, round_, data)
                loads.append(uptime())
                if not args.skip_steps:
                    measure_steps(conditions, args, zoo, folder, round_, data)
                    loads.append(uptime())
        for n in args.more_workers:
            measure_more_workers(n, data)
            loads.append(uptime())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    data["uptime"] = loads
    if args.add_to:
        data = added(json.loads(Path(args.add_to).read_text()), data, args.replace)
        args = argparse.Namespace(**{**vars(args), **data["args"], "out": args.out})
    report(data, args)
    return 0


def added(old, new, replace=False):
    """`old` run's data with `new`'s measurements added (with `replace`, instead of its rows of
    the same model, link and batch, or link and size)."""
    steps = {(r["model"], r["condition"], r["batch_size"]) for r in new["steps"]} if replace else ()
    reduces = {(r["condition"], r["floats"]) for r in new["all_reduce"]} if replace else ()
    old["steps"] = [r for r in old["steps"] if (r["model"], r["condition"], r["batch_size"])
                    not in steps] + new["steps"]
    old["all_reduce"] = [r for r in old["all_reduce"] if (r["condition"], r["floats"])
                         not in reduces] + new["all_reduce"]
    old["uptime"] = old["uptime"] + ["added: " + " | ".join(new["uptime"])]
    old["failures"] = old.get("failures", []) + new.get("failures", [])
    if new.get("more_workers"):
        old["more_workers"] = new["more_workers"]
    old.setdefault("added_runs", []).append(new["args"])
    return old


def measure_all_reduces(conditions, names, sizes, round_, data):
    """One round: the 1-worker call, then every condition's sizes, in turn."""
    if not names:
        return
    ms = all_reduce_ms(sizes, [repeats_for(4 * s, "veth") for s in sizes],
                       workers=conditions.workers("loopback", n=1))
    for size, value in ms.items():
        data["all_reduce"].append({"round": round_, "condition": "1 worker", "workers": 1,
                                   "floats": int(size), "ms": value})
    for condition in names:
        mine = sizes_for(sizes, condition)
        workers = conditions.workers(condition)
        if condition != "loopback":
            data["qdiscs"][condition] = conditions.net.qdiscs()
            if round_ == 1:
                data["throughput_gbit_s"][condition] = round(conditions.net.throughput(), 3)
        ms = all_reduce_ms(mine, [repeats_for(4 * s, condition) for s in mine], workers=workers)
        for size, value in ms.items():
            data["all_reduce"].append({"round": round_, "condition": condition, "workers": 2,
                                       "floats": int(size), "ms": value})
        print(f"round {round_} {condition}: " + ", ".join(f"{s}: {v:.2f} ms"
                                                          for s, v in ms.items()), flush=True)


MORE_SIZES = [1024, 131072, 1_696_097]  # float32: latency-bound, middle, conv_vae's gradient


def measure_more_workers(n, data):
    """All-reduces of `n` workers (more workers than cores: 2 cores hold them all) on the
    unshaped bridge and at 1gbit, to check the model's N dependence."""
    with Network(n) as net:
        conditions = Conditions(net)
        for condition in ("veth", "1gbit"):
            try:
                ms = all_reduce_ms(MORE_SIZES, [repeats_for(4 * s, condition) for s in MORE_SIZES],
                                   workers=conditions.workers(condition, n))
            except RuntimeError as e:  # e.g. a heartbeat timeout when the cores are starved
                data.setdefault("failures", []).append(
                    {"round": 0, "model": f"all-reduce of {n} workers", "condition": condition,
                     "batch_size": None, "error": str(e)[-2000:]})
                print(f"{n} workers {condition}: failed: {str(e)[-300:]}", flush=True)
                continue
            for size, value in ms.items():
                data.setdefault("more_workers", []).append(
                    {"workers": n, "condition": condition, "floats": int(size), "ms": value})
            print(f"{n} workers {condition}: {ms}", flush=True)


def measure_steps(conditions, args, zoo, folder, round_, data):
    """One round: one process of --models (of every zoo model in the first round: their
    compute for the predictions), then the 2-worker runs, interleaved."""
    b = args.per_worker_batch
    runs = [(model, "1 process", None, b) for model in (zoo if round_ == 1 else args.models)]
    runs += [(model, "2 workers", c, 2 * b) for c in args.step_conditions for model in args.models]
    runs += [(args.models[0], "2 workers", c, b) for c in args.global_batch_conditions]
    if args.global_batch_conditions:  # one process at the per-worker batch of those runs
        runs += [(model, "1 process", None, b // 2) for model in args.models[:1]]
    for model, setup, condition, batch in runs:
        workers = conditions.workers(condition) if setup == "2 workers" else None
        try:
            row = train_once("2" if setup == "2 workers" else "1", model, 1, batch, folder,
                             workers=workers)
        except RuntimeError as e:  # a run that failed: said and recorded, not fatal
            print(f"{model} {setup} {condition}: failed: {str(e)[-300:]}", flush=True)
            data.setdefault("failures", []).append(
                {"round": round_, "model": model, "condition": condition or "1 process",
                 "batch_size": batch, "error": str(e)[-2000:]})
            continue
        row.update(round=round_, model=model, condition=condition or "1 process",
                   batch_size=batch)
        data["steps"].append(row)
        print(f"round {round_} {model} {setup} {condition or ''} batch {batch}: "
              f"{row.get('step_ms')} ms per step", flush=True)


def median_of(rows, key, **match):
    values = [r[key] for r in rows if all(r.get(k) == v for k, v in match.items()) and key in r]
    return statistics.median(values) if values else None


def report(data, args):
    """Fits the model, checks it, predicts, and writes the tables."""
    # Medians over rounds of each (condition, size): the fit's data.
    measured = {}
    for row in data["all_reduce"]:
        measured.setdefault((row["condition"], row["workers"], row["floats"]), []).append(row["ms"])
    points = []
    for (condition, n, floats), values in sorted(measured.items()):
        link = scaling_model.Link() if condition == "1 worker" else link_of(condition)
        points.append((n, 4 * floats, link, statistics.median(values), condition))
    fitted = scaling_model.fit([p[:4] for p in points])
    data["fit"] = fitted
    data["fit_points"] = [{"condition": c, "workers": n, "bytes": nbytes, "ms": ms,
                           "model_ms": scaling_model.all_reduce_ms(fitted, n, nbytes, link)
                           if n > 1 else fitted["fixed_ms"]}
                          for n, nbytes, link, ms, c in points]
    errors = [abs(p["model_ms"] / p["ms"] - 1) for p in data["fit_points"]]
    data["fit_median_relative_error"] = statistics.median(errors)

    b = args.per_worker_batch
    steps = data["steps"]
    compute = {m: median_of(steps, "step_ms", model=m, condition="1 process", batch_size=b)
               for m in data["parameters"] if m not in NO_STEP}
    data["compute_ms"] = compute
    lines = [
        f"## All-reduce over a shaped network (2 workers, one core each, namespaces)", "",
        f"MultiWorkerMirroredStrategy's RING all-reduce of N float32 between 2 workers in network "
        f"namespaces joined by a veth pair; median ms over {args.rounds} interleaved rounds (each "
        f"round's value a median of 3-40 timed calls). TCP throughput of one stream measured "
        f"on the link in Gbit/s in brackets.", "",
        "| float32 | " + " | ".join(
            f"{c} ({data['throughput_gbit_s'][c]:.2f})" if c in data["throughput_gbit_s"] else c
            for c in ["1 worker", *args.conditions]) + " |",
        "|---|" + "---|" * (len(args.conditions) + 1)]
    by = {(p["condition"], p["bytes"] // 4): p for p in data["fit_points"]}
    for floats in data["sizes"]:
        cells = []
        for c in ["1 worker", *args.conditions]:
            p = by.get((c, floats))
            cells.append(f"{p['ms']:.2f} ({p['model_ms']:.2f})" if p else "–")
        lines.append(f"| {floats:,} | " + " | ".join(cells) + " |")
    lines += ["", "In brackets: the fitted model's value. Fitted terms (non-negative least "
              "squares on relative error, over all of the table): " + ", ".join(
                  f"{k} = {v:.4g}" for k, v in fitted.items())
              + f"; median relative error {data['fit_median_relative_error']:.1%}.", ""]
    lines += check_steps(data, args, fitted, compute)
    lines += check_more_workers(data, fitted)
    lines += predictions(data, args, fitted, compute)
    for failure in data.get("failures", []):
        last = failure["error"].strip().splitlines()[-1][:200] if failure["error"].strip() else ""
        lines.append(f"Failed and left out: {failure['model']} {failure['condition']} batch "
                     f"{failure['batch_size']} (round {failure['round']}): {last}")
    lines += ["", "Load (`uptime`) before and after each round: " + " | ".join(data["uptime"])]
    write_results(args.out, "network", "\n".join(lines), data)
    plot(data, args, fitted)


def check_steps(data, args, fitted, compute):
    """The model's 2-worker steps against the measured ones (not fitted), plain and with each
    model's `other` calibrated on its own veth step at the per-worker batch alone."""
    b, steps = args.per_worker_batch, data["steps"]
    rows = []
    for model in args.models:
        for condition in args.step_conditions:
            rows.append((model, condition, 2 * b, b))
    rows += [(args.models[0], c, b, b // 2) for c in args.global_batch_conditions]
    table = []
    for model, condition, batch, per_worker in rows:
        measured = median_of(steps, "step_ms", model=model, condition=condition, batch_size=batch)
        if measured is None or compute.get(model) is None:
            continue
        link = link_of(condition) if condition != "loopback" else scaling_model.Link()
        compute_ms = compute[model] * per_worker / b
        reduce = scaling_model.all_reduce_ms(fitted, 2, 4 * data["parameters"][model], link)
        table.append(dict(model=model, condition=condition, batch=batch, measured=measured,
                          compute=compute_ms, all_reduce=reduce, plain=compute_ms + reduce))
    calibration = [t for t in table if t["condition"] == "veth" and t["batch"] == 2 * b]
    other = {t["model"]: t["measured"] - t["plain"] for t in calibration}
    data["other_ms"] = other
    for t in table:
        t["calibrated"] = t["plain"] + other.get(t["model"], 0.0)
    data["step_check"] = table
    measured_half = median_of(steps, "step_ms", model=args.models[0], condition="1 process",
                              batch_size=b // 2)
    lines = ["## The model against measured 2-worker steps (not fitted)", "",
             f"Mean training step after the first (1 epoch of the embedded MNIST sample), median "
             f"of {args.rounds} rounds, ms. Model: one process's step at batch {b} (scaled to the "
             f"per-worker batch) + the fitted all-reduce of the gradient; 'calibrated' adds "
             f"each model's other (what its step pays for peers beyond the gradient all-reduce: "
             + ", ".join(f"{m} {v:.1f} ms" for m, v in other.items())
             + f"), set from its veth step at {b} per worker alone (error 0 by construction), "
             f"so its other rows check how the step follows the link.", "",
             "| model | link | global batch | measured | compute (1 process) | all-reduce (model) "
             "| plain model (error) | calibrated model (error) |", "|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(
            f"| {t['model']} | {t['condition']} | {t['batch']} | {t['measured']:.1f} | "
            f"{t['compute']:.1f} | {t['all_reduce']:.1f} | {t['plain']:.1f} "
            f"({t['plain'] / t['measured'] - 1:+.0%}) | {t['calibrated']:.1f} "
            f"({t['calibrated'] / t['measured'] - 1:+.0%}) |")
    if measured_half and compute.get(args.models[0]):
        lines += ["", f"compute/N check: one process of {args.models[0]} at batch {b // 2}: "
                  f"{measured_half:.1f} ms measured, {compute[args.models[0]] / 2:.1f} ms "
                  f"assumed (half its step at {b})."]
    held_out = [abs(t["calibrated"] / t["measured"] - 1) for t in table if t not in calibration]
    plain = [abs(t["plain"] / t["measured"] - 1) for t in table]
    if plain:
        data["step_check_median_error"] = {"plain": statistics.median(plain),
                                           "calibrated_held_out": statistics.median(held_out)
                                           if held_out else None}
        lines += ["", f"Median |error|: plain {statistics.median(plain):.0%}, calibrated (held "
                  f"out rows) {statistics.median(held_out):.0%}." if held_out else ""]
    return lines + [""]


LARGEST = 4096  # workers searched for where scaling stops paying
def check_more_workers(data, fitted):
    rows = data.get("more_workers")
    if not rows:
        return []
    lines = ["## The model's N dependence against 3 and 4 workers (not fitted)", "",
             "All-reduces of N workers in N namespaces joined by a bridge (each worker's link "
             "shaped on its way out), all on the same 2 cores: more workers than cores, so the "
             "host's terms are shared by more than one worker per core. ms measured (model, "
             "error).", "", "| workers | link | " + " | ".join(f"{s:,} float32" for s in MORE_SIZES)
             + " |", "|---|---|" + "---|" * len(MORE_SIZES)]
    keys = sorted({(r["workers"], r["condition"]) for r in rows})
    for n, condition in keys:
        cells = []
        for size in MORE_SIZES:
            measured = [r["ms"] for r in rows if (r["workers"], r["condition"], r["floats"])
                        == (n, condition, size)]
            if not measured:
                cells.append("–")
                continue
            model = scaling_model.all_reduce_ms(fitted, n, 4 * size, link_of(condition))
            cells.append(f"{measured[0]:.2f} ({model:.2f}, {model / measured[0] - 1:+.0%})")
        lines.append(f"| {n} | {condition} | " + " | ".join(cells) + " |")
    return lines + [""]


PREDICTED_LINKS = {"loopback / unshaped veth": scaling_model.Link(),
                   "10 Gbit/s": scaling_model.Link(rate=10e9),
                   "1 Gbit/s": scaling_model.Link(rate=1e9)}


def predictions(data, args, fitted, compute):
    """Step, speed-up and efficiency of every zoo model at N workers, plain model (other = 0:
    a lower bound of the step where the check shows the model low)."""
    b, other = args.per_worker_batch, 0.0
    rows, lines = [], []
    for global_batch in (False, True):
        regime = (f"global batch {b} fixed ({b}/N per worker)" if global_batch
                  else f"per-worker batch {b} fixed (global {b}N)")
        lines += [f"## Predicted scaling, {regime}", "",
                  "Efficiency per worker (speed-up / N) at N workers, plain model; 'stops "
                  "paying': the first N whose efficiency is below 0.5, and the N of the largest "
                  f"speed-up (searched to {LARGEST}). " + " ".join(
                      f"No {m}: {why}." for m, why in NO_STEP.items()), "",
                  "| model | gradient MB | step at 1 (ms) | link | N=2 | N=4 | N=8 | N=16 | "
                  "speed-up at 16 | efficiency < 0.5 from | best N (its speed-up) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for model, floats in sorted(data["parameters"].items(), key=lambda kv: kv[1]):
            if compute.get(model) is None:
                continue
            for name, link in PREDICTED_LINKS.items():
                cells, row = [], {"model": model, "link": name, "global_batch": global_batch}
                for n in (2, 4, 8, 16):
                    step, speedup, eff = scaling_model.scaling(
                        fitted, 4 * floats, link, compute[model], b, n, global_batch, other)
                    cells.append(f"{eff:.2f}")
                    row[n] = {"step_ms": step, "speedup": speedup, "efficiency": eff}
                below, best = scaling_model.stops_paying(fitted, 4 * floats, link,
                                                         compute[model], b, global_batch, other,
                                                         largest=LARGEST)
                _, top, _ = scaling_model.scaling(fitted, 4 * floats, link, compute[model], b,
                                                  best, global_batch, other)
                row.update(below_half=below, best_n=best, best_speedup=top)
                rows.append(row)
                best_text = (f"none: {top:.2f}x at best" if top < 1 else
                             f"still rising at {LARGEST}" if best == LARGEST else
                             f"{best} ({top:.1f}x)")
                lines.append(f"| {model} | {4 * floats / 1e6:.1f} | {compute[model]:.0f} | {name} | "
                             + " | ".join(cells) + f" | {row[16]['speedup']:.1f}x | "
                             f"{below or f'>{LARGEST}'} | {best_text} |")
        lines.append("")
    data["predictions"] = rows
    return lines


def plot(data, args, fitted):
    """network.png, drawn by benchmarks/plots.py (which also redraws it from network.json)."""
    from benchmarks import plots

    plots.network(data, args.out, conditions=args.conditions, models=args.models)


if __name__ == "__main__":
    if sys.argv[1:2] == ["proxy"]:  # one delaying proxy: proxy PORT HOST:PORT DELAY_MS
        try:
            asyncio.run(serve_proxy(int(sys.argv[2]), sys.argv[3], float(sys.argv[4])))
        except KeyboardInterrupt:
            pass
        sys.exit(0)
    sys.exit(main())
