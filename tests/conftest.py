"""Fixtures: real repositories in temporary folders, and ways to run `git convoy` in them.

`convoy(...)` runs the CLI in-process (fast, same code path as the entry point, including
the one-line error policy); `git_convoy(...)` runs the installed entry point through
`git convoy` as a subprocess for end-to-end tests.

`git convoy` must mean *this* installation whatever PATH the suite was started with (a
bare `.venv/bin/python -m pytest`, CI's own venv): at start-up the folder holding this
interpreter's scripts goes first on PATH.
"""

from __future__ import annotations

import contextlib
import io
import os
import socketserver
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from dulwich.server import FileSystemBackend, TCPGitServer
from hypothesis import settings

from gitconvoy.cli import main

STATE_REF = "refs/heads/convoy/state"
ENTRY_POINT = "git-convoy"


def scripts_folder() -> Path:
    """Where pip put this interpreter's `git-convoy`: the venv's bin, or the user scheme's."""
    schemes = [sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")]
    folders = [Path(sysconfig.get_path("scripts", scheme)) for scheme in schemes]
    for folder in folders:
        if (folder / ENTRY_POINT).exists():
            return folder
    raise pytest.UsageError(
        f"{ENTRY_POINT} is not installed for {sys.executable} (looked in "
        f"{', '.join(map(str, folders))}): run {sys.executable} -m pip install -e '.[test]'"
    )


def in_ci() -> bool:
    """CI=true (as .ci/run is started): seeds are fixed and nothing may skip for lack of a
    tool that .ci/run installs."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


# In CI every property test draws the same examples on every run (derandomize: the seed
# comes from the test itself), with no example database carried between runs; a failure
# prints the blob that reproduces it. Locally hypothesis keeps its random seed.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if in_ci():
    settings.load_profile("ci")


def pytest_configure(config: pytest.Config) -> None:
    """Put this installation's scripts folder first on PATH, so `git convoy` in a subprocess
    runs the code under test (also in every xdist worker, which runs this hook too)."""
    folder = str(scripts_folder())
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != folder]
    os.environ["PATH"] = os.pathsep.join([folder, *rest])


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def git(*args: str, cwd: Path | str | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    """`git merge-base --is-ancestor` answers by exit code (its output is always empty)."""
    return subprocess.run(["git", "merge-base", "--is-ancestor", ancestor, descendant],
                          cwd=repo, capture_output=True).returncode == 0


def ref_of(repo: Path, ref: str = STATE_REF) -> str | None:
    proc = subprocess.run(["git", "rev-parse", "-q", "--verify", ref], cwd=repo,
                          capture_output=True, text=True)
    return proc.stdout.strip() or None


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own git config must not change results."""
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "CONVOY_NOW",
                "GIT_CONFIG_PARAMETERS", "CONVOY_IN_HOOK"):
        monkeypatch.delenv(var, raising=False)


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    (path / "README").write_text("hello\n")
    git("add", "README", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh repository with one commit; the test runs inside it."""
    path = make_repo(tmp_path / "repo")
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def state_repo(repo: Path) -> Path:
    """A repository with `git convoy init --prefix t` done."""
    assert convoy("init", "--prefix", "t").code == 0
    return repo


def convoy(*args: str) -> Result:
    """Run `git convoy ARGS` in-process in the current folder."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Result(code, out.getvalue(), err.getvalue())


def ok(*args: str) -> str:
    """Run a command that must succeed; its stdout, stripped."""
    res = convoy(*args)
    assert res.code == 0, f"git convoy {' '.join(args)} -> {res.code}: {res.err}{res.out}"
    return res.out.strip()


def stuck(*args: str) -> str:
    """Run a refinery command that must leave an MR in conflict or push_failed: exit 3."""
    res = convoy(*args)
    assert res.code == 3, f"git convoy {' '.join(args)} -> {res.code}: {res.err}{res.out}"
    return res.out.strip()


def git_convoy(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
               check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed entry point through git, as a user runs it."""
    proc = subprocess.run(
        ["git", "convoy", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"git convoy {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def python() -> str:
    return sys.executable


def workdir_state(repo: Path) -> tuple[str, str, str, str]:
    """HEAD, the index's tree, the porcelain status and HEAD's symbolic name."""
    head = git("rev-parse", "HEAD", cwd=repo)
    index_tree = git("write-tree", cwd=repo)
    status = git("status", "--porcelain=v1", "--untracked-files=all", cwd=repo)
    symbolic = git("symbolic-ref", "-q", "HEAD", cwd=repo, check=False)
    return head, index_tree, status, symbolic


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    yield monkeypatch.chdir


class ThreadingGitServer(socketserver.ThreadingMixIn, TCPGitServer):
    """dulwich's git:// server, one thread per connection, so pushes really race."""

    daemon_threads = True


@contextlib.contextmanager
def dulwich_remote(bare: Path) -> Iterator[str]:
    """An in-process git:// remote serving a bare repository on 127.0.0.1."""
    server = ThreadingGitServer(FileSystemBackend(), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"git://127.0.0.1:{server.server_address[1]}{bare}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def eventually(what: str, predicate: Callable[[], object], timeout: float = 20.0) -> object:
    """Wait (bounded) until `predicate()` is truthy, and return it: for what a detached
    process does, such as a dispatch command a hook started (tests never sleep to sync)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
