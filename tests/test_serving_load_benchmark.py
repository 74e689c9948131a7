"""benchmarks/serving_load.py runs end to end, tiny, and writes its table; its numbers are the
script's business (benchmarks/results/serving_load.md), never asserted here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_serving_load_script(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/serving_load.py", "--model", "dense_vae", "--clients", "2",
         "--seconds", "0.3", "--calls", "3", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "serving_load.json").read_text())
    rows = data["rows"]
    assert [(r["api"], r["batch"]) for r in rows] == [
        ("in-process SavedModel", 1), ("in-process SavedModel", 64),
        ("REST", 1), ("gRPC", 1), ("REST", 64), ("gRPC", 64)]
    served = rows[2:]
    assert all(r["errors"] == 0 and r["requests"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0
               for r in served), served
    assert all(r["peak_rss_mb"] > 100 for r in served) and data["peak_rss_mb"] > 100
    assert "| gRPC | 64 |" in (tmp_path / "serving_load.md").read_text()
    assert (tmp_path / "serving_load.png").stat().st_size > 0  # its plot, beside the table
