"""Child processes that must not hold their parent, or must not outlive it.

Three needs, one place. A hook starts a rig's dispatch command *detached* (`start_detached`:
its own session, so no terminal and no Ctrl-C of the user's reaches it; stdin from /dev/null;
stdout and stderr into a log; no file descriptor of ours, so git is not kept waiting for a
pipe to close) and returns while it runs. A cold read finishes its work in a forked child
detached the same way (`fork_detached`: the caches it writes once its answer is out). The
refinery starts a check that must *not* outlive it: `parent_death_signal` gives the child
Linux's PR_SET_PDEATHSIG, so even a SIGKILL of the refinery reaches it. `alive` tells whether
a recorded pid still runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:  # subprocess loads where a command starts (15 ms a cold read does not pay)
    import subprocess

PR_SET_PDEATHSIG = 1

# Popen objects of detached children: kept so that dropping them does not warn "still
# running"; the kernel hands the children to init when this process exits.
_DETACHED: list[subprocess.Popen[bytes]] = []


def alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[:1] != ["Z"]
    except OSError:
        return True  # no /proc here: kill(0) said it exists


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A preexec function that makes the kernel send `sig` to the child when this process
    dies (Linux); None where the system has no such thing."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only the refinery needs it; a hook's dispatch does not

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig)

    return preexec


def start_detached(argv: list[str], *, cwd: str, env: dict[str, str], log: str) -> int:
    """Start `argv` in its own session with its output appended to `log`; its pid. Raises
    OSError when it cannot start."""
    import subprocess

    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    _DETACHED.append(proc)
    return proc.pid


def fork_detached(work: Callable[[], None], keep_fds: tuple[int, ...] = ()) -> bool:
    """Run `work` in a forked child in a session of its own, with stdin, stdout and stderr
    on /dev/null and no other file descriptor but `keep_fds`, and return at once: no
    terminal, signal or pipe of the caller's is held by it, so a reader of our output sees
    its end when this process exits. The child leaves with os._exit, whatever `work` does.
    False where this process cannot fork (then the caller runs `work` itself). Only for a
    process with no other thread."""
    if not hasattr(os, "fork"):
        return False
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid:
        return True
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        start = 3
        for fd in sorted(keep_fds):
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        work()
    finally:
        os._exit(0)
