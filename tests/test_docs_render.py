"""The built site renders in a browser: the home and results pages load, the results plots are
<img> elements whose PNGs the server sends, and a headless screenshot is not blank.

Needs the docs extra and a Chromium (Debian's `chromium`; .ci/run installs it where it can);
skipped otherwise.
"""

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                if shutil.which(b)), None)
pytestmark = [
    pytest.mark.skipif(BROWSER is None, reason="no headless browser (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None
                       or importlib.util.find_spec("mkdocstrings") is None,
                       reason="the docs extra is not installed: pip install -e '.[docs]'"),
]
PLOTS = ["quality", "generation", "time_to_result", "network", "serving", "serving_load",
         "multi_worker"]


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the site and remembers the status of every path asked for."""

    served = {}

    def log_request(self, code="-", size="-"):
        self.served[self.path] = int(code) if str(code).isdigit() else code

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--site-dir", str(folder)],
                            cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def browser(*args, timeout=120):
    """Headless Chromium with a fresh profile; --no-sandbox because CI runs as root."""
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"vae-zoo-chromium-{os.getpid()}"
    try:
        return subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-dev-shm-usage", "--hide-scrollbars",
                               f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                               *args], capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url, path, size="1280,2400"):
    browser(f"--screenshot={path}", f"--window-size={size}", url)
    assert path.exists(), f"no screenshot of {url}"
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return pixels


def test_the_home_page_renders(site, tmp_path):
    pixels = screenshot(f"{site}/", tmp_path / "home.png")
    assert pixels.std() > 10, "the home page's screenshot is blank"
    dom = browser("--dump-dom", f"{site}/").stdout
    assert "Train your first VAE" in dom and "<nav" in dom


def test_the_results_page_shows_its_plots(site, tmp_path):
    Handler.served.clear()
    dom = browser("--dump-dom", f"{site}/results/").stdout
    sources = re.findall(r'<img [^>]*src="([^"]+\.png)"', dom)
    names = {Path(s).stem for s in sources}
    assert set(PLOTS) <= names, f"plots missing from the rendered page: {set(PLOTS) - names}"
    for name in PLOTS:  # the browser asked for each plot and got it
        path = f"/results/{name}.png"
        assert Handler.served.get(path) == 200, (path, Handler.served)
        with urllib.request.urlopen(site + path) as answer:
            assert answer.status == 200 and answer.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = screenshot(f"{site}/results/", tmp_path / "results.png", size="1280,4000")
    assert pixels.std() > 10, "the results page's screenshot is blank"
    # a plot near the top (quality.png): the page has more than text, dark lines on white
    assert (pixels < 128).mean() > 0.01
