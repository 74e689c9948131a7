"""The documentation site builds strictly, its results plots are the benchmarks' own, and the README
stays a short front page that links into the site."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmarks/ is a folder of the clone, not of the package

from benchmarks import plots  # noqa: E402

DOCS_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
missing = [m for m in DOCS_TOOLS if importlib.util.find_spec(m.split(".")[0]) is None
           or importlib.util.find_spec(m) is None]
needs_mkdocs = pytest.mark.skipif(
    bool(missing), reason=f"the docs extra is not installed ({', '.join(missing)} missing): "
                          "pip install -e '.[docs]'")
PLOTS = ["quality", "generation", "time_to_result", "network", "serving", "serving_load",
         "multi_worker"]


def build_site(site_dir):
    """`mkdocs build --strict` into `site_dir`: any warning (a broken link or anchor, a
    docstring parameter that is not in the signature, a missing page) fails it."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site_dir)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={"NO_MKDOCS_2_WARNING": "1", **__import__("os").environ})


@needs_mkdocs
def test_the_site_builds_strictly_with_the_api_reference_and_plots(tmp_path):
    result = build_site(tmp_path / "site")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    site = tmp_path / "site"
    reference = (site / "reference" / "models" / "index.html").read_text()
    assert "ZooModel" in reference and "log_importance_weights" in reference  # from docstrings
    page = site / "results" / "index.html"
    images = {Path(src).name: (page.parent / src).resolve()
              for src in re.findall(r'<img [^>]*src="([^"]+)"', page.read_text())}
    for name in PLOTS:
        assert f"{name}.png" in images, f"the results page shows no {name}.png"
        assert images[f"{name}.png"].stat().st_size > 10_000, name


def test_the_site_shows_the_benchmarks_own_plots():
    """docs/results/ is a copy the plots module makes; it must be the benchmark's PNG."""
    page = (REPO / "docs" / "results.md").read_text()
    for name in PLOTS:
        assert f"(results/{name}.png)" in page, f"results.md does not show {name}.png"
        site_copy = REPO / "docs" / "results" / f"{name}.png"
        assert site_copy.read_bytes() == (REPO / "benchmarks" / "results" / f"{name}.png").read_bytes(), (
            f"docs/results/{name}.png differs from benchmarks/results/{name}.png: "
            "run python benchmarks/plots.py")


def test_no_plot_is_older_than_its_results():
    """Each PNG's `Data` chunk is the digest of the JSON it was drawn from: a benchmark whose
    results changed without its plot being drawn again fails here."""
    from PIL import Image

    assert sorted(plots.PLOTS) == sorted(PLOTS)
    for name in PLOTS:
        drawn_from = Image.open(REPO / "benchmarks" / "results" / f"{name}.png").text.get("Data")
        assert drawn_from == plots.digest(*plots.inputs(name)), (
            f"benchmarks/results/{name}.png was drawn from other data than the stored JSON: "
            "run python benchmarks/plots.py")


def test_every_plot_is_drawn_again_from_the_stored_json(tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in (REPO / "docs" / "results").glob("*.png")}
    written = plots.redraw(out=tmp_path)
    assert sorted(p.stem for p in written) == sorted(PLOTS)
    for png in written:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # drawn elsewhere than benchmarks/results/: the site's copies are left alone
    assert before == {p.name: p.stat().st_mtime_ns for p in (REPO / "docs" / "results").glob("*.png")}


def test_a_plot_takes_what_a_partial_run_stores(tmp_path):
    """time_to_result.py may skip parts (--skip); a run that measured nothing draws nothing."""
    assert plots.time_to_result({"train": [], "pythae": [], "evaluation": None}, tmp_path) is None
    rows = [{"dataset": "d", "row": "a", "seeds": 1, "epochs": 2, "iw_samples": 10,
             "iw_nll": 90.0, "iw_nll_sd": None, "paper": None}]
    assert plots.quality(rows, tmp_path).exists()


@pytest.mark.parametrize("script, call", [
    ("quality", "plots.quality(rows, args.out)"),
    ("time_to_result", "plots.time_to_result(results, args.out)"),
    ("serving", "plots.serving(rows, args.out)"),
    ("serving_load", "plots.serving_load(data, args.out)"),
    ("network", "plots.network("),
])
def test_each_benchmark_draws_its_plot_where_it_writes_its_table(script, call):
    source = (REPO / "benchmarks" / f"{script}.py").read_text()
    assert call in source
    if script != "network":  # network.py draws from its report(), after its write_results
        lines = source.splitlines()
        at = next(i for i, line in enumerate(lines) if call in line)
        assert "write_results(" in "\n".join(lines[at - 4:at]), "not beside write_results"


README = (REPO / "README.md").read_text()


def test_the_readme_is_short_and_keeps_the_commands():
    assert len(README.splitlines()) <= 200
    assert 'pip install -e ".[test]"' in README
    assert "python train.py --model conv_vae" in README
    assert re.search(r"^## Tests\n\n```bash\npython -m pytest ", README, re.M)


def test_the_readme_names_no_commit_and_no_machine_load():
    """Provenance (commits, the machine's load) lives in benchmarks/results/, not the README."""
    hashes = re.findall(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", README)
    assert not hashes, hashes
    assert not re.search(r"load average|loaded machine|quiet machine", README, re.I)


def test_the_readme_links_resolve():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local), "no link into the site"
    for link in local:
        assert (REPO / link).exists(), f"README links to {link}, which does not exist"
