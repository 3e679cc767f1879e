"""The README's first command must keep working: the demo goes from plan to landed branches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import git_convoy


@pytest.mark.slow
def test_demo_lands_the_whole_convoy(tmp_path):
    out = git_convoy("demo", cwd=tmp_path, timeout=300, env={"TMPDIR": str(tmp_path)}).stdout
    assert "launched convoy-" in out
    # echoed commands paste into a shell: a title with a space is quoted
    assert "$ git convoy bead create --type epic 'Auth overhaul'" in out, out[:800]
    assert "integration land" in out
    assert "landed: every tracked bead is closed" in out
    assert "5/5 closed, 0 in flight" in out
    # the demo ends with the HTML report, kept after the sample repository is removed
    opened = re.search(r"^open (\S+/report\.html)$", out, re.M)
    assert opened, out[-500:]
    page = Path(opened.group(1))
    assert page.parent.parent == tmp_path and not list(tmp_path.glob("convoy-demo-*/app"))
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Auth overhaul" in html
    assert html.count('<g class="bead st-') == 5 and "Recent state changes" in html
