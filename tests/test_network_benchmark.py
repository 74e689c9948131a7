"""benchmarks/network.py: the namespace harness (a veth pair, tbf, the delaying proxy, cleanup)
and benchmarks/scaling_model.py's fit. No timed assertion on training speed; the shaped link is
checked only against its ceiling, the delay against its floor."""

import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import scaling_model
from benchmarks.network import Network
from benchmarks.network import missing_privileges
from benchmarks.network import parse_condition
from benchmarks.scaling_model import Link
from tests.test_train_cli import REPO


def can_make_namespaces():
    if missing_privileges():
        return False
    return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0


needs_namespaces = pytest.mark.skipif(
    not can_make_namespaces(),
    reason="needs root, iproute2 (ip, tc), taskset and `ip netns` to build the shaped network")

KNOWN = {"fixed_ms": 0.12, "hop_ms": 0.6, "delay_factor": 2.0, "wire_factor": 1.05,
         "host_ms_per_mb": 2.2, "proxy_hop_ms": 0.65, "proxy_ms_per_mb": 0.3}


def synthetic(noise=0.0, seed=0):
    """All-reduce times from KNOWN on the benchmark's grid of sizes and links."""
    rng = np.random.default_rng(seed)
    links = [Link(), Link(rate=10e9), Link(rate=1e9), Link(rate=1e8),
             Link(rate=1e9, proxy=True), Link(rate=1e9, delay_ms=2.0, proxy=True)]
    points = [(1, 4 * s, Link(), KNOWN["fixed_ms"]) for s in (1024, 10 ** 6)]
    for link in links:
        for floats in (1024, 16384, 131072, 524288, 1_079_600, 1_696_097, 4_194_304):
            ms = scaling_model.all_reduce_ms(KNOWN, 2, 4 * floats, link)
            points.append((2, 4 * floats, link, ms * (1 + noise * rng.standard_normal())))
    return points


def test_the_fit_recovers_known_terms():
    fitted = scaling_model.fit(synthetic())
    for term, value in KNOWN.items():
        assert fitted[term] == pytest.approx(value, rel=1e-6), term


def test_the_fit_is_close_under_noise_and_predicts_the_ring():
    fitted = scaling_model.fit(synthetic(noise=0.02))
    for term in ("delay_factor", "wire_factor", "host_ms_per_mb"):
        assert fitted[term] == pytest.approx(KNOWN[term], rel=0.1), term
    # N workers: 2(N-1) hops, 2(N-1)/N of the bytes; 1 worker pays nothing.
    link = Link(rate=1e9)
    four = scaling_model.all_reduce_ms(KNOWN, 4, 8e6, link)
    assert four == pytest.approx(KNOWN["fixed_ms"] + 6 * KNOWN["hop_ms"]
                                 + 1.5 * 8e6 * (KNOWN["wire_factor"] * 8e-6 + KNOWN["host_ms_per_mb"] / 1e6))
    assert scaling_model.all_reduce_ms(KNOWN, 1, 8e6, link) == 0


def test_scaling_and_where_it_stops_paying():
    link = Link(rate=1e9)
    # per-worker batch fixed: images/s grow with N, efficiency is step(1) / step(N)
    step, speedup, eff = scaling_model.scaling(KNOWN, 4e6, link, 80.0, 128, 4)
    assert eff == pytest.approx(80.0 / step) and speedup == pytest.approx(4 * eff)
    # global batch fixed: compute shrinks as 1/N, the all-reduce does not: the speed-up peaks
    below, best = scaling_model.stops_paying(KNOWN, 4e6, link, 80.0, 128, global_batch=True)
    assert below is not None and best >= 2
    _, at_best, _ = scaling_model.scaling(KNOWN, 4e6, link, 80.0, 128, best, True)
    _, after, _ = scaling_model.scaling(KNOWN, 4e6, link, 80.0, 128, 2 * best, True)
    assert after < at_best


def test_conditions_are_parsed():
    assert parse_condition("loopback") == (None, None)
    assert parse_condition("veth+0ms") == (None, 0.0)
    assert parse_condition("1gbit+2ms") == ("1gbit", 2.0)
    with pytest.raises(ValueError):
        parse_condition("fast")


def test_it_refuses_in_one_line_without_its_tools(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/network.py", "--skip-steps"], cwd=REPO,
                            env={**os.environ, "PATH": str(tmp_path)}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "benchmarks/network.py: needs" in result.stderr


def test_it_says_why_without_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert missing_privileges() == "needs root (network namespaces and qdiscs): run it with sudo"


def _names():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@needs_namespaces
def test_the_namespaces_pass_traffic_at_the_shaped_rate_and_are_removed():
    with Network(2) as net:
        names = list(net.names)
        assert all(name in _names() for name in names)
        net.shape("100mbit")
        assert all("tbf" in q and "100Mbit" in q for q in net.qdiscs())
        gbit = net.throughput(nbytes=3_000_000)
        assert 0.005 < gbit < 0.13  # never above the ceiling (with slack for the burst)
        net.shape(None)
        assert not any("tbf" in q for q in net.qdiscs())
    assert not any(name in _names() for name in names)


@needs_namespaces
def test_the_proxy_delays_each_direction():
    with Network(2) as net:
        net.delay(25)
        echo = subprocess.Popen(net.run_in(1, [sys.executable, "-c", ECHO]),
                                stdout=subprocess.PIPE, text=True)
        try:
            assert echo.stdout.readline().strip() == "ready"
            out = subprocess.run(net.run_in(0, [sys.executable, "-c", PING]), capture_output=True,
                                 text=True, timeout=60, check=True).stdout
        finally:
            echo.kill()
            echo.wait()
        assert float(out) >= 0.05  # there and back: 2 x 25 ms
    assert not net.proxies


ECHO = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 2222)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.sendall(c.recv(10))
"""
PING = """
import socket, time
c = socket.create_connection(("127.0.0.1", 3001))
time.sleep(0.2)  # the proxy's connection to the peer is up
start = time.perf_counter(); c.sendall(b"ping"); c.recv(10)
print(time.perf_counter() - start)
"""


@needs_namespaces
def test_leftovers_of_a_dead_run_are_removed():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    name = f"vaezoo-{dead.pid}-0"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with Network(2):
            assert name not in _names()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.mark.slow
@needs_namespaces
def test_the_script_measures_fits_and_cleans_up(tmp_path):
    """The all-reduces only (no training), on the unshaped pair: about a minute."""
    import json

    result = subprocess.run([sys.executable, "benchmarks/network.py", "--skip-steps",
                             "--conditions", "veth", "--rounds", "1", "--out", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "network.json").read_text())
    assert {r["condition"] for r in data["all_reduce"]} == {"1 worker", "veth"}
    assert data["parameters"]["conv_vae"] == 1_696_097
    assert data["fit"]["host_ms_per_mb"] > 0 and data["uptime"]
    assert (tmp_path / "network.md").read_text().startswith("## All-reduce")
    # no namespace left behind but those of runs still going (its own are named by its pid)
    assert all(os.path.exists(f"/proc/{name.split('-')[1]}") for name in _names().split()
               if name.startswith("vaezoo-"))
