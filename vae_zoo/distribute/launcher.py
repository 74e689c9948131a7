"""`python train.py ... --workers N`: N workers of one command on 127.0.0.1, supervised as one job.

Each worker runs the same command with its own TF_CONFIG. Worker 0 (the chief) prints to this
terminal; the others write log files in a temporary folder, named when something fails. If a worker
fails, the others are stopped (SIGTERM, then SIGKILL after a grace period) and the launcher exits
with the failing worker's code, so nothing waits forever on a dead peer. Ctrl-C, SIGTERM and SIGHUP
are passed on to every worker once per signal, so the first one lets them save and stop; from the
second, workers still running after the grace period are killed. A process that is waiting for
its peers in creating MultiWorkerMirroredStrategy does not die of SIGTERM: TensorFlow swallows the
signal there (measured), so the SIGKILL after the grace period is what stops it. A training
worker stops on it (every worker at the same step, `training.loop.TrainingLoop.request_stop`).

Workers run in their own sessions: the terminal's Ctrl-C reaches them only through the launcher
(exactly once), and stopping a worker stops any process it started.

`python -m vae_zoo.distribute.launcher --workers N -- COMMAND...` launches any command this way.
"""

import argparse
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from vae_zoo.distribute.cluster import make_tf_config
from vae_zoo.errors import UserInputError

LOOPBACK = "127.0.0.1"
GRACE_SECONDS = 10.0
WORKERS_FLAG = "--workers"
_POLL_SECONDS = 0.05
# What a worker prints when its port was taken: the OS's words, and TensorFlow's for its gRPC server.
_PORT_TAKEN = ("address already in use", "could not start grpc server")
# SIGHUP too: the workers' own sessions do not hear the terminal close, and would run on orphaned.
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Exit codes of a worker that stopped on a signal sent to a worker rather than to the launcher (a
# preempted pod, a kill by hand): train.py's, and those of a process the signal ended.
_STOPPED = {128 + signal.SIGINT: "Ctrl-C", 128 + signal.SIGTERM: "SIGTERM"}


@dataclasses.dataclass
class _Worker:
    index: int
    process: subprocess.Popen
    log: Path
    tee: threading.Thread = None


def launch(command, num_workers, host=LOOPBACK, grace=GRACE_SECONDS):
    """Runs `command` as `num_workers` workers on `host` and returns the job's exit code.

    Ports are picked free by binding port 0; another program can take one before the worker binds
    it, so when a worker's output says its port was taken the job is started once more on new ports.
    TensorFlow's server listens on every interface (0.0.0.0), not only on `host`.

    Args:
        command: list of str. The command every worker runs, e.g. `[sys.executable, "train.py", ...]`.
        num_workers: int. Number of workers, >= 1.
        host: str. The address the workers listen on.
        grace: float. Seconds a worker gets to exit after SIGTERM (or after a repeated Ctrl-C)
            before it is killed.

    Returns:
        0 when every worker succeeds; otherwise the exit code of the first worker that failed
        (128 + N for a worker ended by signal N).

    Raises:
        UserInputError: for `num_workers` < 1 or a command that cannot be started.
    """
    if num_workers < 1:
        raise UserInputError(f"{WORKERS_FLAG} must be >= 1, got {num_workers}")
    log_dir = Path(tempfile.mkdtemp(prefix="vae_zoo_workers_"))
    for attempt in (1, 2):
        addresses = [f"{host}:{port}" for port in free_ports(num_workers)]
        _say(f"{num_workers} workers on {', '.join(addresses)}; worker 0 (chief) prints here, "
             f"the others to {log_dir}/worker-<i>.log")
        try:
            code, failed, interrupted = _run(command, addresses, log_dir, grace)
        except UserInputError:
            shutil.rmtree(log_dir, ignore_errors=True)
            raise
        if code == 0:
            shutil.rmtree(log_dir, ignore_errors=True)
            return 0
        if attempt == 1 and not interrupted and _port_was_taken(log_dir, num_workers):
            _say("a picked port was taken before its worker could bind it; starting again on new ports")
            continue
        break
    if interrupted:
        _say(f"stopped by a signal (exit code {code}). Output of every worker: {log_dir}")
    elif code in _STOPPED:
        _say(f"worker {failed} stopped after a {_STOPPED[code]} (exit code {code}); stopped the "
             f"others. Output of every worker: {log_dir}")
    else:
        _say(f"worker {failed} failed with exit code {code}; stopped the others. "
             f"Output of every worker: {log_dir}")
        if failed != 0:  # the chief's errors are on the terminal already
            _print_tail(log_dir / f"worker-{failed}.log")
    return code


def free_ports(count):
    """`count` distinct ports that were free a moment ago, on every interface as TensorFlow's server
    binds them (all bound to port 0 at once, then released).
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def worker_command(command):
    """`command` without its `--workers N` (or `--workers=N`, or an abbreviation argparse accepts)."""
    result, skip = [], False
    for arg in command:
        name = arg.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) > 2 and WORKERS_FLAG.startswith(name):
            skip = "=" not in arg
        else:
            result.append(arg)
    return result


def launch_workers(argv, num_workers):
    """`train.py --workers N`: relaunches this command as N local workers (see the module docstring).

    Args:
        argv: list of str, or None for this process's own command line (`sys.orig_argv`).
        num_workers: int. The value of --workers.
    """
    if os.environ.get("TF_CONFIG", "").strip() not in ("", "{}"):
        raise UserInputError(f"TF_CONFIG is set, so this process is already one worker of a cluster; "
                             f"drop {WORKERS_FLAG} (it starts a cluster on this machine) or unset "
                             f"TF_CONFIG")
    if argv is None:  # the interpreter, its options and the script or -m module, as the user typed them
        command = [sys.executable, *sys.orig_argv[1:]]
    else:
        command = [sys.executable, "-m", "vae_zoo.commands.train", *argv]
    return launch(worker_command(command), num_workers)


def _run(command, addresses, log_dir, grace):
    """Starts and supervises one attempt.

    Returns:
        `(exit code, index of the first worker that failed or None, whether a signal came)`.
    """
    received = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _FORWARDED:
            previous[signum] = signal.signal(signum, lambda signum, frame: received.append(signum))
    workers = []
    try:
        for index in range(len(addresses)):
            workers.append(_start(command, addresses, index, log_dir))
        for worker in workers:
            if worker.tee:
                worker.tee.start()
        code, failed = _supervise(workers, received, grace)
        return code, failed, bool(received)
    finally:
        for worker in workers:  # also ends what a worker started and left behind
            _signal_group(worker, signal.SIGKILL)
        for worker in workers:
            worker.process.wait()
            if worker.tee:
                worker.tee.join(timeout=5)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start(command, addresses, index, log_dir):
    log = log_dir / f"worker-{index}.log"
    env = {**os.environ, "TF_CONFIG": make_tf_config(addresses, index), "PYTHONUNBUFFERED": "1"}
    options = dict(env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        with open(log, "wb") as out:
            if index == 0:  # stdout straight to the terminal (progress bars); stderr also to the log
                process = subprocess.Popen(command, stderr=subprocess.PIPE, **options)
                tee = threading.Thread(target=_tee, args=(process.stderr, log), daemon=True)
                return _Worker(index, process, log, tee)
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **options)
    except OSError as e:
        raise UserInputError(f"cannot start the workers' command {command[0]!r}: {e.strerror}") from e
    return _Worker(index, process, log)


def _tee(pipe, log):
    with open(log, "ab") as out:
        for line in iter(pipe.readline, b""):
            out.write(line)
            out.flush()
            sys.stderr.write(line.decode(errors="replace"))
            sys.stderr.flush()
    pipe.close()


def _supervise(workers, received, grace):
    failed, code, kill_at, forwarded = None, 0, None, 0
    while True:
        while forwarded < len(received):
            signum = received[forwarded]
            forwarded += 1
            for worker in workers:
                _signal_group(worker, signum)
            if forwarded > 1:
                kill_at = min(kill_at or float("inf"), time.monotonic() + grace)
        running = [w for w in workers if w.process.poll() is None]
        if failed is None:
            for worker in workers:
                if worker.process.returncode not in (None, 0):
                    failed, code = worker.index, _exit_code(worker.process.returncode)
                    if not received:  # after a signal the others are stopping already
                        for other in running:
                            _signal_group(other, signal.SIGTERM)
                    kill_at = min(kill_at or float("inf"), time.monotonic() + grace)
                    break
        if not running:
            return code, failed
        if kill_at is not None and time.monotonic() >= kill_at:
            for worker in running:
                _signal_group(worker, signal.SIGKILL)
            kill_at = float("inf")
        time.sleep(_POLL_SECONDS)


def _signal_group(worker, signum):
    try:
        os.killpg(worker.process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_code(returncode):
    return 128 - returncode if returncode < 0 else returncode


def _port_was_taken(log_dir, num_workers):
    for index in range(num_workers):
        log = log_dir / f"worker-{index}.log"
        text = log.read_text(errors="replace").lower() if log.is_file() else ""
        if any(marker in text for marker in _PORT_TAKEN):
            return True
    return False


def _print_tail(log, lines=20):
    if log.is_file():
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        _say(f"last {len(tail)} lines of {log}:\n" + "\n".join(f"  | {line}" for line in tail))


def _say(message):
    print(f"launcher: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m vae_zoo.distribute.launcher",
        description="Run COMMAND as N multi-worker TensorFlow workers on 127.0.0.1, each with its "
        "TF_CONFIG; stop them all if one fails.",
    )
    parser.add_argument(WORKERS_FLAG, type=int, required=True, metavar="N")
    parser.add_argument("--grace", type=float, default=GRACE_SECONDS,
                        help="seconds between SIGTERM and SIGKILL when stopping workers")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    try:
        return launch(command, args.workers, grace=args.grace)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
