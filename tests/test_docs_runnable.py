"""The guides' runnable blocks run, so that a guide's commands cannot rot.

A fenced ```bash or ```python block right after a `<!-- runnable -->` line (an HTML comment:
invisible on the site and on GitHub) is runnable. The blocks of one page run in order in one
fresh folder, as a reader would type them from a clone's top level: `python X.py` and
`python -m ...` with this interpreter and the repository on PYTHONPATH, a bash block line by line
(a trailing backslash continues it), a python block as one script. Pages that use a run folder
(`runs/conv_vae`) get a copy of the one "Train your first VAE" makes. The blocks are written
small (one epoch, a few hundred images) so that all of them take about a minute and a half on
2 cores.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
MARKER = "<!-- runnable -->"
FIRST = "guides/first-vae.md"  # makes the run folder the other pages use


def runnable_blocks(text):
    """[(language, code)] of the blocks marked runnable in a page's markdown."""
    blocks = []
    pattern = re.compile(r"^<!-- runnable -->\n```(bash|python)\n(.*?)^```$", re.M | re.S)
    for match in pattern.finditer(text):
        blocks.append((match.group(1), match.group(2)))
    if len(blocks) != len(re.findall(rf"^{MARKER}$", text, re.M)):
        pytest.fail(f"a {MARKER} marker not directly above a ```bash or ```python block")
    return blocks


def pages():
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
                  if re.search(rf"^{MARKER}$", p.read_text(), re.M))


def commands(code):
    """The commands of a bash block: comments and blank lines dropped, continuations joined."""
    lines, current = [], ""
    for line in code.splitlines():
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.lstrip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def as_run_here(command):
    """argv for a documented command, run from a folder other than the clone."""
    argv = shlex.split(command, comments=True)
    if argv[0] == "python":
        argv[0] = sys.executable
        if argv[1].endswith(".py"):
            argv[1] = str(REPO / argv[1])
    return argv


def run_page(page, folder):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2",
           "VAE_ZOO_CACHE": str(folder / "cache")}  # a prepared image folder stays out of ~/.cache
    for language, code in runnable_blocks((DOCS / page).read_text()):
        if language == "python":
            script = folder / "block.py"
            script.write_text(code)
            runs = [[sys.executable, str(script)]]
        else:
            runs = [as_run_here(c) for c in commands(code)]
        for argv in runs:
            result = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True,
                                    timeout=300)
            assert result.returncode == 0, (
                f"{page}: {' '.join(argv)} exited {result.returncode}\n"
                f"{code}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}")


def test_the_marker_is_found_and_parsed():
    text = f"a\n\n{MARKER}\n```bash\npython train.py \\\n    --epochs 1  # one\n# note\n```\n"
    assert runnable_blocks(text) == [("bash", "python train.py \\\n    --epochs 1  # one\n# note\n")]
    assert commands(runnable_blocks(text)[0][1]) == ["python train.py      --epochs 1  # one"]
    assert as_run_here("python train.py --epochs 1  # one")[1:] == [str(REPO / "train.py"),
                                                                     "--epochs", "1"]
    with pytest.raises(pytest.fail.Exception):
        runnable_blocks(f"{MARKER}\n\n```bash\nls\n```\n")  # a gap: the marker would be lost
    assert runnable_blocks(f"the marker is `{MARKER}`, in a sentence\n") == []
    assert FIRST in pages() and len(pages()) >= 5


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first-vae")
    run_page(FIRST, folder)
    assert (folder / "runs" / "conv_vae" / "model.keras").exists()
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", pages())
def test_runnable_blocks_of(page, first_run, tmp_path):
    if page == FIRST:
        return  # ran by the fixture
    shutil.copytree(first_run / "runs", tmp_path / "runs")
    run_page(page, tmp_path)
