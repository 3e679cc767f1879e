"""Run a rig's check command on one exact commit, in a temporary worktree, with a timeout.

The command comes from local git config or the project's committed `.convoy/config.toml`
(gitconvoy.localconfig), never from the state ref. It runs through `sh -c` in a detached
worktree of the candidate commit, so it sees exactly the tree that would land and nothing of
the user's checkout; its output goes to a log file under .git/convoy/logs/ that outlives the
worktree, so a failure can be read later (`refinery status` shows the path).

A check never outlives the process that runs it. It runs in its own process group, led by a
tiny supervisor that kills the whole group when the refinery dies: the kernel tells it
(PR_SET_PDEATHSIG, Linux), even after a SIGKILL of the refinery. A refinery stopped by
SIGTERM or Ctrl-C kills the group itself and removes the worktree on its way out. Each
temporary worktree has a marker beside it (`.git/convoy/tmp/check-XXXX.pid`) naming the
process that made it; a worktree whose process is gone is stale: `doctor` reports it and the
next `refinery run` removes it (`prune_stale`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from gitconvoy import procs
from gitconvoy.git import gitcli
from gitconvoy.state.model import now
from gitconvoy.state.store import Store

DEFAULT_TIMEOUT = 600.0
PREFIX = "check-"
MARKER = ".pid"
UNMARKED_GRACE = 60.0  # seconds: a folder about to get its marker is not stale

# The leader of the check's process group: runs the command through sh and, on SIGTERM (sent
# by the kernel when the refinery dies, or by anyone stopping it), kills the whole group.
# `-I -S` and builtin modules only: it starts in a few ms. The child gets back the signal
# dispositions Python changed (SIGPIPE, SIGXFSZ ignored), as subprocess would restore them.
SUPERVISOR = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))\n"
    "if os.getppid() != int(sys.argv[2]):\n"
    "    os.killpg(0, signal.SIGKILL)\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    try:\n"
    "        for sig in (signal.SIGTERM, signal.SIGPIPE, signal.SIGXFSZ):\n"
    "            signal.signal(sig, signal.SIG_DFL)\n"
    "        os.execv('/bin/sh', ['/bin/sh', '-c', sys.argv[1]])\n"
    "    finally:\n"
    "        os._exit(127)\n"
    "code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n"
    "sys.exit(128 - code if code < 0 else code)\n"
)


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


def scratch_dir(store: Store) -> str:
    return os.path.join(store.common_dir, "convoy", "tmp")


def run_check(store: Store, command: str, commit: str, *, label: str,
              timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None) -> CheckResult:
    """Check out `commit` in a temporary worktree and run `command` there."""
    log = log_path(store, label)
    scratch = scratch_dir(store)
    os.makedirs(scratch, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=PREFIX, dir=scratch)
    _write(workdir + MARKER, f"{os.getpid()}\n")
    started = time.monotonic()
    with _stop_on_sigterm():
        try:
            made = gitcli.run_git(
                ["-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet",
                 "--force", workdir, commit],
                git_dir=store.common_dir, check=False,
            )
            if made.code != 0:
                _write(log, f"could not create the check worktree: {made.err}")
                return CheckResult(False, f"could not create a worktree: {made.first_error}",
                                   log)
            return _run(command, workdir, log, timeout, env or {}, started)
        finally:
            _remove_worktree(store, workdir)


def _remove_worktree(store: Store, workdir: str) -> None:
    removed = gitcli.run_git(["worktree", "remove", "--force", workdir],
                             git_dir=store.common_dir, check=False)
    if removed.code != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        gitcli.run_git(["worktree", "prune"], git_dir=store.common_dir, check=False)
    with contextlib.suppress(OSError):
        os.remove(workdir + MARKER)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """While a check runs, SIGTERM unwinds like Ctrl-C does (the check's group is killed and
    its worktree removed on the way out) instead of ending the process where it stands. A
    process that handles SIGTERM itself (`refinery watch` finishes the landing in progress)
    keeps its handler."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
                [sys.executable, "-I", "-S", "-c", SUPERVISOR, command, str(os.getpid())],
                cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=procs.parent_death_signal(signal.SIGTERM),
            )
        except OSError as exc:
            return CheckResult(False, f"check command could not start: {exc.strerror}", log)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out.write(f"\n# killed after {timeout:g}s\n")
            return CheckResult(False, f"check timed out after {timeout:g}s", log,
                               time.monotonic() - started)
        except BaseException:  # Ctrl-C, SIGTERM: the check goes down with us
            _kill_group(proc)
            out.write("\n# killed: the refinery was stopped\n")
            raise
        _kill_group(proc)  # whatever it left running in the background goes too
        seconds = time.monotonic() - started
        out.write(f"\n# exit {code} after {seconds:.2f}s\n")
    if code == 0:
        return CheckResult(True, f"check passed in {seconds:.1f}s", log, seconds)
    return CheckResult(False, f"check failed (exit {code})", log, seconds)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --- stale check worktrees --------------------------------------------------------------


@dataclass
class Stale:
    path: str
    pid: int | None  # the process that made it, None when no marker says

    def line(self) -> str:
        who = f"pid {self.pid}" if self.pid else "unknown process"
        return f"stale check worktree {self.path} (its refinery, {who}, is gone)"


def _registered(store: Store) -> set[str]:
    res = gitcli.run_git(["worktree", "list", "--porcelain"], git_dir=store.common_dir,
                         check=False)
    return {ln[len("worktree "):] for ln in res.out.splitlines() if ln.startswith("worktree ")}


def _marker_pid(path: str) -> int | None:
    try:
        with open(path + MARKER, encoding="utf-8") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stale_worktrees(store: Store) -> list[Stale]:
    """Check worktrees (`.git/convoy/tmp/check-*`, registered or not) whose process is gone;
    read-only. A folder (or marker) is what a killed refinery leaves, so without one nothing
    is looked up."""
    scratch = os.path.realpath(scratch_dir(store))
    try:
        entries = os.listdir(scratch)
    except OSError:
        entries = []
    if not any(n.startswith(PREFIX) for n in entries):
        return []  # the common case costs one listdir; git prunes a vanished folder itself
    names = {os.path.join(scratch, n) for n in entries
             if n.startswith(PREFIX) and not n.endswith(MARKER)}
    registered = {os.path.realpath(p) for p in _registered(store)}
    names |= {p for p in registered
              if os.path.dirname(p) == scratch and os.path.basename(p).startswith(PREFIX)}
    found = []
    for path in sorted(names):
        pid = _marker_pid(path)
        if pid is not None and procs.alive(pid):
            continue
        if pid is None and _younger_than(path, UNMARKED_GRACE):
            continue
        found.append(Stale(path, pid))
    return found


def _younger_than(path: str, seconds: float) -> bool:
    try:
        return time.time() - os.stat(path).st_mtime < seconds
    except OSError:
        return False


def prune_stale(store: Store) -> list[str]:
    """Remove the stale check worktrees (a refinery killed during a check leaves one
    registered); one line for each."""
    lines = []
    for stale in stale_worktrees(store):
        _remove_worktree(store, stale.path)
        lines.append("pruned " + stale.line())
    return lines
