"""The local launcher (`--workers N`) with small stand-in worker scripts instead of TensorFlow
training: TF_CONFIG per worker, output routing, a dying worker, hanging workers, signals, ports."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from vae_zoo.distribute import launcher
from vae_zoo.commands import train as cli

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}

# Every stand-in worker records its PID and TF_CONFIG in <out>/<index>.json, then does what its
# `role` says for its index.
WORKER = """
import json, os, pathlib, signal, subprocess, sys, time
out, role = pathlib.Path(sys.argv[1]), sys.argv[2]
config = json.loads(os.environ["TF_CONFIG"])
index = config["task"]["index"]
record = {"pid": os.getpid(), "tf_config": config, "argv": sys.argv[3:]}

def on_signal(signum, frame):
    with open(out / f"{index}.signals", "a") as f:
        f.write(f"{signum}\\n")
    time.sleep(0.5)  # time for a duplicate signal to arrive, if one were sent
    sys.exit(128 + signum)

if role == "succeed":
    print(f"stdout of worker {index}")
    print(f"stderr of worker {index}", file=sys.stderr)
elif role == "worker_1_dies":
    signal.signal(signal.SIGTERM, on_signal)  # record that the launcher asked nicely
elif role in ("hang", "stops_on_signal"):
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal if role == "stops_on_signal" else signal.SIG_IGN)
    if role == "hang":  # a child that also ignores SIGTERM and would be orphaned
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        record["child"] = child.pid
elif role == "bind":
    host, port = config["cluster"]["worker"][index].split(":")
    socket = __import__("socket").socket()
    socket.bind((host, int(port)))  # as TensorFlow's server does; raises if the port is taken
tmp = out / f"{index}.tmp"
tmp.write_text(json.dumps(record))
tmp.rename(out / f"{index}.json")  # whole or absent for whoever reads it

def wait_for_peers():  # until every worker has set up its signal handling and written its record
    workers, deadline = len(config["cluster"]["worker"]), time.monotonic() + 60
    while len(list(out.glob("*.json"))) < workers and time.monotonic() < deadline:
        time.sleep(0.05)

if role == "worker_1_dies" and index == 1:
    wait_for_peers()
    print("boom: worker 1 gives up", file=sys.stderr)
    sys.exit(3)
if role == "hang" and index == 2:
    wait_for_peers()
    sys.exit(5)
if role in ("worker_1_dies", "hang", "stops_on_signal"):
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.1)
"""


@pytest.fixture(autouse=True)
def logs_in_tmp_path(tmp_path, monkeypatch):
    """The launcher's log folders (kept when a worker fails) go under the test's tmp_path."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setitem(ENV, "TMPDIR", str(tmp_path))


@pytest.fixture
def worker(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    return lambda role, *args: [sys.executable, str(script), str(out), role, *args]


def records(out):
    return {int(p.stem): json.loads(p.read_text()) for p in out.glob("*.json")}


def alive(pid):
    """True while `pid` runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def log_dir(stderr):
    return Path(re.search(r"the others to (\S+)/worker-<i>\.log", stderr).group(1))


@pytest.mark.timeout(60)
def test_all_workers_succeed_with_their_own_tf_config(worker, tmp_path, capfd):
    assert launcher.launch(worker("succeed", "--epochs", "2"), 3) == 0
    stdout, stderr = capfd.readouterr()
    found = records(tmp_path / "out")
    assert sorted(found) == [0, 1, 2]
    addresses = found[0]["tf_config"]["cluster"]["worker"]
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    for index, record in found.items():
        assert record["tf_config"] == {"cluster": {"worker": addresses},
                                       "task": {"type": "worker", "index": index}}
        assert record["argv"] == ["--epochs", "2"]
        assert not alive(record["pid"])
    # The chief talks to the terminal; the others only to their logs, removed after a success.
    assert "stdout of worker 0" in stdout and "stderr of worker 0" in stderr
    assert "of worker 1" not in stdout + stderr and "of worker 2" not in stdout + stderr
    assert not log_dir(stderr).exists()


@pytest.mark.timeout(60)
def test_a_dying_worker_stops_the_others_and_its_code_is_the_jobs(worker, tmp_path, capfd):
    assert launcher.launch(worker("worker_1_dies"), 3, grace=20) == 3
    stderr = capfd.readouterr().err
    found = records(tmp_path / "out")
    assert sorted(found) == [0, 1, 2] and not any(alive(r["pid"]) for r in found.values())
    # The others were asked to stop with SIGTERM (not killed outright) and stopped at once.
    for index in (0, 2):
        assert (tmp_path / f"out/{index}.signals").read_text() == f"{int(signal.SIGTERM)}\n"
    assert "worker 1 failed with exit code 3; stopped the others" in stderr
    logs = log_dir(stderr)
    assert f"Output of every worker: {logs}" in stderr
    assert "boom: worker 1 gives up" in (logs / "worker-1.log").read_text()
    assert "| boom: worker 1 gives up" in stderr  # the end of its log, shown on the terminal
    assert "starting again" not in stderr  # not a port problem: no second attempt


@pytest.mark.timeout(60)
def test_workers_that_ignore_sigterm_are_killed_with_what_they_started(worker, tmp_path, capfd):
    assert launcher.launch(worker("hang"), 3, grace=1) == 5
    found = records(tmp_path / "out")
    assert sorted(found) == [0, 1, 2]
    pids = [r["pid"] for r in found.values()] + [r["child"] for r in found.values()]
    assert len(pids) == 6
    # Workers are reaped before launch returns; their children got SIGKILL and die at once.
    wait_for(lambda: not any(alive(pid) for pid in pids), seconds=10)
    assert "worker 2 failed with exit code 5" in capfd.readouterr().err


@pytest.mark.timeout(60)
def test_a_port_taken_before_its_worker_binds_it_starts_the_job_again(worker, tmp_path, monkeypatch,
                                                                      capfd):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real, picks = launcher.free_ports, []

    def free_ports(count):
        ports = real(count)
        if not picks:
            ports[1] = taken.getsockname()[1]  # worker 1's port is gone by the time it binds
        picks.append(ports)
        return ports

    monkeypatch.setattr(launcher, "free_ports", free_ports)
    try:
        assert launcher.launch(worker("bind"), 2, grace=5) == 0
    finally:
        taken.close()
    assert len(picks) == 2
    assert "starting again on new ports" in capfd.readouterr().err
    ports = [int(a.split(":")[1]) for a in records(tmp_path / "out")[0]["tf_config"]["cluster"]["worker"]]
    assert ports == picks[1]


def test_a_command_that_cannot_start_is_a_user_error_and_leaves_no_logs(tmp_path, capfd):
    with pytest.raises(launcher.UserInputError, match="cannot start the workers' command '/no/such'"):
        launcher.launch(["/no/such", "--flag"], 2)
    assert not log_dir(capfd.readouterr().err).exists()


def test_free_ports_are_distinct_and_bindable():
    ports = launcher.free_ports(4)
    assert len(set(ports)) == 4
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


@pytest.mark.parametrize("command, expected", [
    (["py", "train.py", "--workers", "2", "--epochs", "3"], ["py", "train.py", "--epochs", "3"]),
    (["py", "train.py", "--workers=2", "--epochs", "3"], ["py", "train.py", "--epochs", "3"]),
    (["py", "train.py", "--epochs", "3", "--work", "2"], ["py", "train.py", "--epochs", "3"]),
    (["py", "train.py", "--w", "2", "--set", "train.seed=2"], ["py", "train.py", "--set", "train.seed=2"]),
    (["py", "-u", "train.py", "--seed", "2"], ["py", "-u", "train.py", "--seed", "2"]),
])
def test_worker_command_drops_only_the_workers_flag(command, expected):
    assert launcher.worker_command(command) == expected


# The train.py hook ----------------------------------------------------------------------------------

def test_train_workers_hands_the_command_to_the_launcher_before_anything_else(monkeypatch):
    calls = []
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setattr(launcher, "launch", lambda command, n: calls.append((command, n)) or 7)
    monkeypatch.setattr(cli, "resolve", lambda args: pytest.fail("resolved the config itself"))
    assert cli.main(["--model", "dense_vae", "--workers", "3", "--epochs", "1"]) == 7
    assert calls == [([sys.executable, "-m", "vae_zoo.commands.train", "--model", "dense_vae",
                       "--epochs", "1"], 3)]


def test_workers_in_a_process_that_has_tf_config_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:1"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    assert cli.main(["--workers", "2"]) == 2
    assert "error: TF_CONFIG is set, so this process is already one worker" in capsys.readouterr().err


def run_train(*args):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_train_workers_0_is_one_error_line_exit_2(tmp_path):
    result = run_train("--workers", "0", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        "error: --workers must be >= 1, got 0"]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_train_workers_runs_train_py_as_workers_without_the_flag(tmp_path):
    """Each worker runs train.py itself and fails on the bad model name (not on --workers under
    TF_CONFIG, which it would see if the flag were passed on); the job exits with that code."""
    result = run_train("--model", "vqvae", "--workers", "2", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "launcher: 2 workers on 127.0.0.1:" in result.stderr
    assert "error: unknown model 'vqvae'" in result.stderr  # the chief's own error line
    assert "TF_CONFIG is set" not in result.stderr
    assert re.search(r"worker [01] failed with exit code 2", result.stderr)


def start_launcher(command, grace):
    """`python -m vae_zoo.distribute.launcher` running `command` as 2 workers, in its own session
    (as from a terminal)."""
    return subprocess.Popen(
        [sys.executable, "-m", "vae_zoo.distribute.launcher", "--workers", "2", "--grace",
         str(grace), "--", *command],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_reaches_every_worker_once_and_sets_the_exit_code(worker, tmp_path, signum):
    process = start_launcher(worker("stops_on_signal"), grace=10)
    try:
        wait_for(lambda: len(records(tmp_path / "out")) == 2)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signum, stderr
    for index in (0, 1):
        assert (tmp_path / f"out/{index}.signals").read_text() == f"{int(signum)}\n"
    assert "stopped by a signal" in stderr
    assert not any(alive(r["pid"]) for r in records(tmp_path / "out").values())


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_worker_sent_sigterm_itself_is_reported_as_stopped_and_the_others_stop_too(worker,
                                                                                    tmp_path):
    """SIGTERM to worker 1 alone, as to a preempted pod: not reported as a failure."""
    process = start_launcher(worker("stops_on_signal"), grace=10)
    try:
        wait_for(lambda: len(records(tmp_path / "out")) == 2)
        os.kill(records(tmp_path / "out")[1]["pid"], signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "worker 1 stopped after a SIGTERM (exit code 143); stopped the others" in stderr
    assert "failed" not in stderr
    for index in (0, 1):
        assert (tmp_path / f"out/{index}.signals").read_text() == f"{int(signal.SIGTERM)}\n"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_second_signal_kills_workers_that_do_not_stop(worker, tmp_path):
    process = start_launcher(worker("hang"), grace=1)
    try:
        wait_for(lambda: len(records(tmp_path / "out")) == 2)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None  # ignored by the workers: the launcher keeps waiting for them
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 128 + signal.SIGKILL, stderr
    pids = [pid for r in records(tmp_path / "out").values() for pid in (r["pid"], r["child"])]
    wait_for(lambda: not any(alive(pid) for pid in pids), seconds=10)
