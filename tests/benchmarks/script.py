"""Runs one benchmark script as a user would, from the repository root."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(script, *args):
    result = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result
