"""Child processes that must not hold their parent, or must not outlive it.

Two needs, one place. A hook starts a rig's dispatch command *detached* (`start_detached`: its
own session, so no terminal and no Ctrl-C of the user's reaches it; stdin from /dev/null;
stdout and stderr into a log; no file descriptor of ours, so git is not kept waiting for a
pipe to close) and returns while it runs. The refinery starts a check that must *not* outlive
it: `parent_death_signal` gives the child Linux's PR_SET_PDEATHSIG, so even a SIGKILL of the
refinery reaches it. `alive` tells whether a recorded pid still runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

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
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    _DETACHED.append(proc)
    return proc.pid
