"""Run a rig's check command on one exact commit, in a temporary worktree, with a timeout.

The command comes from local git config or the project's committed `.convoy/config.toml`
(gitconvoy.localconfig), never from the state ref. It runs through `sh -c` in a detached
worktree of the candidate commit, so it sees exactly the tree that would land and nothing of
the user's checkout; its output goes to a log file under .git/convoy/logs/ that outlives the
worktree, so a failure can be read later (`refinery status` shows the path).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from gitconvoy.git import gitcli
from gitconvoy.state.model import now
from gitconvoy.state.store import Store

DEFAULT_TIMEOUT = 600.0


@dataclass
class CheckResult:
    passed: bool
    detail: str
    log: str | None = None
    seconds: float = 0.0


def parse_timeout(value: str | None) -> float:
    """Seconds from config (`600`, `90s`, `10m`); the default when unset or unreadable."""
    if not value:
        return DEFAULT_TIMEOUT
    text = value.strip().lower()
    scale = 60.0 if text.endswith("m") else 1.0
    try:
        seconds = float(text.rstrip("ms")) * scale
    except ValueError:
        return DEFAULT_TIMEOUT
    return seconds if seconds > 0 else DEFAULT_TIMEOUT


def log_path(store: Store, label: str) -> str:
    folder = os.path.join(store.common_dir, "convoy", "logs")
    os.makedirs(folder, exist_ok=True)
    stamp = now().replace(":", "").replace("-", "").replace(".", "")
    return os.path.join(folder, f"{label}-{stamp}.log")


def run_check(store: Store, command: str, commit: str, *, label: str,
              timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None) -> CheckResult:
    """Check out `commit` in a temporary worktree and run `command` there."""
    log = log_path(store, label)
    scratch = os.path.join(store.common_dir, "convoy", "tmp")
    os.makedirs(scratch, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="check-", dir=scratch)
    started = time.monotonic()
    try:
        made = gitcli.run_git(
            ["-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet",
             "--force", workdir, commit],
            git_dir=store.common_dir, check=False,
        )
        if made.code != 0:
            _write(log, f"could not create the check worktree: {made.err}")
            return CheckResult(False, f"could not create a worktree: {made.first_error}", log)
        return _run(command, workdir, log, timeout, env or {}, started)
    finally:
        removed = gitcli.run_git(["worktree", "remove", "--force", workdir],
                                 git_dir=store.common_dir, check=False)
        if removed.code != 0:
            shutil.rmtree(workdir, ignore_errors=True)
            gitcli.run_git(["worktree", "prune"], git_dir=store.common_dir, check=False)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _run(command: str, workdir: str, log: str, timeout: float, extra: dict[str, str],
         started: float) -> CheckResult:
    env = gitcli.clean_env(other_repo=True, extra={"CONVOY_IN_HOOK": "1", **extra})
    env.pop("LC_ALL", None)
    with open(log, "w", encoding="utf-8") as out:
        out.write(f"$ {command}\n# in {workdir}\n")
        out.flush()
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command], cwd=workdir, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            return CheckResult(False, f"check command could not start: {exc.strerror}", log)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            out.write(f"\n# killed after {timeout:g}s\n")
            return CheckResult(False, f"check timed out after {timeout:g}s", log,
                               time.monotonic() - started)
        seconds = time.monotonic() - started
        out.write(f"\n# exit {code} after {seconds:.2f}s\n")
    if code == 0:
        return CheckResult(True, f"check passed in {seconds:.1f}s", log, seconds)
    return CheckResult(False, f"check failed (exit {code})", log, seconds)
