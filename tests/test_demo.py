"""The README's first command must keep working: the demo goes from plan to landed branches."""

from __future__ import annotations

import pytest
from conftest import git_convoy


@pytest.mark.slow
def test_demo_lands_the_whole_convoy(tmp_path):
    out = git_convoy("demo", cwd=tmp_path, timeout=300).stdout
    assert "launched convoy-" in out
    assert "integration land" in out
    assert "landed: every tracked bead is closed" in out
    assert "5/5 closed, 0 in flight" in out
