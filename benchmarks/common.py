"""What every benchmark script shares: where results go and how they are written."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(out, name, table, data):
    """Prints the markdown table and writes it and the raw data to `out/<name>.{md,json}`."""
    print("\n" + table)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(table + "\n")
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
