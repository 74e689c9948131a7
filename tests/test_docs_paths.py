"""No tracked file names a path that exists only on the machine it was written on.

The rule (`MACHINE_PATHS`): an absolute path into someone's home folder (Linux, macOS, Windows),
the root user's home, this project's working area, macOS's per-user temporary folders, or a
virtual environment under a temporary folder is a leak: it means nothing on a reader's machine,
and says who ran what where. Paths that mean the same thing on every machine stay allowed:
system paths the code reads (`/proc/cpuinfo`, `/usr/share/datasets/...`, `/usr/bin/env`), and
the placeholders of examples (`/shared/runs/...`, `/models/...` inside a container). Write a
path relative to the clone (`benchmarks/results`), or with `$HOME`/`~` or a placeholder, instead.
This file is checked too: its patterns and examples are spelled so that they do not match.
"""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Spelled so that this file does not match itself.
MACHINE_PATHS = re.compile("|".join([
    r"(?<![\w.~$-])/ro{1}ot/",
    r"(?<![\w.~$-])/ho{1}me/[A-Za-z0-9_.-]+/",
    r"(?<![\w.~$-])/Us{1}ers/[A-Za-z0-9_.-]+/",
    r"[A-Za-z]:\\\\?Us{1}ers\\\\?",
    r"(?<![\w.~$-])/wo{1}rk/",
    r"(?<![\w.~$-])/private/var/fo{1}lders/",
    r"(?<![\w.~$-])/tm{1}p/[^\s\"'`]*venv",
]))


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [REPO / name for name in out.decode().split("\0") if name]


def leaks(text):
    return [m.group(0) for m in MACHINE_PATHS.finditer(text)]


def test_the_rule_catches_machine_paths_and_spares_generic_ones():
    for path in ["/ro" "ot/.cache/x", "/ho" "me/alice/data", "/wo" "rk/main/runs",
                 "/tm" "p/abc/venv/bin/python", "C:\\Us" "ers\\bob\\x", "/Us" "ers/bob/x"]:
        assert leaks(f"see {path} here"), path
    for path in ["/usr/share/datasets/fashion-mnist", "/proc/cpuinfo", "/shared/runs/mw",
                 "/models/conv_vae", "$HOME/.cache/vae_zoo", "~/wo" "rk/x", "benchmarks/wo" "rk/x",
                 "/tmp/x.npz"]:
        assert not leaks(f"see {path} here"), path


def test_no_tracked_file_names_a_machine_path():
    found = {}
    for path in tracked_files():
        if not path.is_file():
            continue  # deleted in the work tree, not yet in the index
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (PNGs, weights)
        hits = leaks(data.decode("utf-8", errors="replace"))
        if hits:
            found[str(path.relative_to(REPO))] = sorted(set(hits))[:5]
    assert not found, f"machine-specific absolute paths: {found}"
