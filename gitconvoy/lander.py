"""`git convoy refinery watch`: a long-running lander for a machine that wants one.

It lands whatever is queued (one `cycle.land_queue`), then sleeps until the state ref moves
(`done` on any clone reaches here through a sync or a fetch) or a retry period passes (a
push that failed is tried again). Idle, it reads one ref per interval: no git process, no
parse. One lander per repository: an exclusive `flock` on `.git/convoy/refinery.lock`, which
the kernel releases when the process dies, so a crash cannot leave it stuck. SIGINT/SIGTERM
stop it after the landing in progress; a second signal stops it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gitconvoy import cycle
from gitconvoy.errors import ConvoyError
from gitconvoy.land.refinery import RunReport
from gitconvoy.state.store import Store

LOCK_FILE = "refinery.lock"
DUE_FILE = "refinery-due"  # left by the server's post-receive shim: land (again)


class Busy(ConvoyError):
    """Another lander holds the lock."""


@contextlib.contextmanager
def lander_lock(store: Store) -> Iterator[str]:
    """Hold the repository's lander lock; refuse (one line, naming the holder) if taken."""
    path = os.path.join(store.common_dir, "convoy", LOCK_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise Busy(f"another lander (pid {holder}) is watching this repository "
                              f"({path}): one 'refinery watch' per repository") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)


@dataclass
class WatchOptions:
    interval: float = 1.0  # seconds between two looks at the state ref
    retry_every: float = 60.0  # land again even if nothing moved (push retries, backoff)
    max_rounds: int | None = None  # for tests and one-off runs: stop after this many rounds


def watch(store: Store, options: WatchOptions, report: Callable[[RunReport], None],
          stop: Callable[[], bool], started: Callable[[], None] = lambda: None) -> int:
    """Land, wait for a change, land again, until `stop()`; the number of rounds run.
    `started` runs once the lock is held."""
    rounds = 0
    with lander_lock(store):
        started()
        while not stop():
            report(cycle.land_queue(store))
            rounds += 1
            if options.max_rounds is not None and rounds >= options.max_rounds:
                break
            seen = store.state_commit()
            deadline = time.monotonic() + options.retry_every
            while not stop() and time.monotonic() < deadline:
                if store.state_commit() != seen:
                    break
                time.sleep(options.interval)
    return rounds


def _take(path: str) -> bool:
    try:
        os.remove(path)
    except OSError:
        return False
    return True


def serve(store: Store, report: Callable[[RunReport], None]) -> int:
    """What the server's post-receive shim starts: land while pushes keep marking work due,
    then exit. It dispatches nothing: a bare remote has no workers, and a bead it handed to
    its rig's default dispatch (a branch, no command) was lost to every worker. A second
    serve while one runs exits at once; the running one sees the marker the second push
    left, also when it arrives just as the lock is released."""
    due = os.path.join(store.common_dir, "convoy", DUE_FILE)
    rounds = 0
    while True:
        try:
            with lander_lock(store):
                while _take(due) or rounds == 0:
                    report(cycle.land_queue(store, dispatch=False))
                    rounds += 1
        except Busy:
            return rounds
        if not os.path.exists(due):
            return rounds
