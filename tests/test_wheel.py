"""The built wheel ships hooks/ and formulas/ (as gitconvoy/_data/…) and an installed copy
finds its hook templates there, not in a source tree."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import make_repo

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Without build isolation when the backend (hatchling) is installed: no package index
    # needed. Otherwise pip fetches it into an isolated build environment.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", *isolation, "-q",
         "-w", str(out)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (found,) = out.glob("gitconvoy-*.whl")
    return found


def shipped(folder: str) -> set[str]:
    return {p.name for p in (ROOT / folder).iterdir() if p.is_file()}


def test_the_wheel_holds_hooks_and_formulas(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("hooks", "formulas"):
        files = shipped(folder)
        assert files, f"{folder}/ is empty in the source tree"
        for name in files:
            assert f"gitconvoy/_data/{folder}/{name}" in names
    assert "gitconvoy/_data/hooks/reference-transaction.sh" in names
    assert "gitconvoy/_data/hooks/post.sh" in names


def test_an_installed_wheel_installs_hooks_from_its_own_data(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, text=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # before the editable install on sys.path
    probe = subprocess.run(
        [sys.executable, "-c",
         "import gitconvoy.git.hookinstall as h; print(h.__file__); print(h.template_dir())"],
        check=True, capture_output=True, text=True, env=env, cwd=tmp_path,
    ).stdout.split()
    assert probe[0].startswith(str(site))
    assert probe[1] == str(site / "gitconvoy" / "_data" / "hooks")

    repo = make_repo(tmp_path / "repo")
    for args in (["init", "--prefix", "w"], ["hooks", "install"]):
        subprocess.run([sys.executable, "-m", "gitconvoy", *args], cwd=repo, check=True,
                       capture_output=True, text=True, env=env)
    shim = (repo / ".git" / "hooks" / "reference-transaction").read_text()
    template = (ROOT / "hooks" / "reference-transaction.sh").read_text()
    assert template.splitlines()[0] in shim
