"""`ready` with no cache at all, without click or pygit2: the cold read.

With nothing in .git/convoy/cache, the full CLI spends ~170 ms importing click, pygit2 and
the commands before it reads a file, then ~9 µs a bead in pygit2. This path reads the ref
(gitconvoy.state.reffiles), the objects (gitconvoy.state.objectfiles) and every state file
(gitconvoy.state.treeload, which parses as the full path does), computes the answer with
the same graph rules and prints it with the same code (commands/readout.py). Then, once the
answer is out, it writes what the full path would have written: the read cache, the stored
answer and the state ref's name, so the next read is warm.

`answer(argv)` gives the three texts and that last step, or None, and None always means "run
the full CLI": any other command or option than quick.parse takes for `ready`, a read cache
on disk (the full path patches it, which costs less than a read of every file), a
`[convoy]` section in any config file (convoy.ref may be set: pygit2 resolves it), and
anything objectfiles or treeload do not read exactly.
"""

from __future__ import annotations

import os

from gitconvoy.commands import quick
from gitconvoy.state import reffiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from gitconvoy.state.model import Bead
    from gitconvoy.state.snapshot import Loaded
    from gitconvoy.state.store import Store


def answer(argv: list[str], start: str | None = None) \
        -> tuple[tuple[str, str, str], Callable[[], None]] | None:
    """What a cold `ready` prints on stderr, stdout, stderr, and the caches to write after
    printing it; or None: run the full CLI."""
    parsed = quick.parse(list(argv))
    if parsed is None or parsed[0] != "ready" or not reffiles.plain_environment():
        return None
    options = parsed[1]
    place = reffiles.find_repository(os.getcwd() if start is None else start)
    if place is None:
        return None
    from gitconvoy.state import cache

    if os.path.exists(cache.cache_file(place.common_dir)):
        return None
    ref = reffiles.unconfigured_ref(place)
    if ref is None:
        return None
    commit = reffiles.read_ref(place, ref)
    if commit is None or len(commit) != 40:
        return None
    loaded = _load(place.common_dir, commit)
    if loaded is None:
        return None
    return _ready(place, ref, commit, loaded, options)


def _ready(place: reffiles.Place, ref: str, commit: str, loaded: Loaded,
           options: dict[str, Any]) -> tuple[tuple[str, str, str], Callable[[], None]]:
    """commands/beads.py's `ready`, from a load: the texts, and the writes to make."""
    from gitconvoy.commands import readout
    from gitconvoy.plan import graph

    warnings = readout.warning_lines([loaded.errors[path].message
                                      for path in sorted(loaded.errors)])
    found = graph.ready_beads(loaded.objects["beads"])
    plain = readout.ready_output(warnings, found, False)
    as_json, limit = options.get("as_json", False), options.get("limit", 0)
    shown = plain if not (as_json or limit) else \
        readout.ready_output(warnings, found[:limit] if limit else found, as_json)
    return shown.texts(), lambda: _keep(place, ref, commit, loaded, found, plain.texts)


def _load(common_dir: str, commit: str) -> Loaded | None:
    from gitconvoy.state import treeload
    from gitconvoy.state.objectfiles import ObjectFiles, Unsure

    try:
        objects = ObjectFiles(os.path.join(common_dir, "objects"))
        return treeload.load(objects, treeload.state_tree(objects, commit))
    except (Unsure, KeyError, OSError):
        return None


def _keep(place: reffiles.Place, ref: str, commit: str, loaded: Loaded, found: list[Bead],
          texts: Callable[[], tuple[str, str, str]]) -> None:
    """What the full path writes on a read (the read cache, the answer without options,
    the ref's name and the identity it remembers with it), written by a detached child once
    the answer is out: the caller's prompt comes back while it writes (~0.15 s of CPU at
    10,000 beads, ~1.1 s at 100,000). Each file is written whole under another name and
    renamed into place, as the full path writes it, so a reader sees the old file or the
    new one, never a part. The child holds the writer lock until it is done
    (`wait_for_writer`)."""
    from gitconvoy import procs

    def write() -> None:
        import gc

        gc.disable()  # nothing here makes a cycle, and the child leaves with os._exit
        store = _store(place)  # what the full read remembers comes from libgit2 alone
        if store is None or store.ref != ref:
            return  # libgit2 reads another ref: nothing of this read is kept
        from gitconvoy.state import answers, cache

        # The answer and the ref's name first: with them the next `ready` is warm. The read
        # cache last: while it is missing, a read that finds no answer yet reads cold again.
        answers.keep(place.common_dir, "ready", commit, found, texts)
        answers.remember_ref(store)
        cache.save(place.common_dir, loaded)

    lock = _lock(place.common_dir, wait=False)
    if lock is None:
        return  # another cold read is writing them (or none can be written here)
    try:
        if not procs.fork_detached(write, keep_fds=(lock,)):
            write()
    finally:
        os.close(lock)  # the child keeps its own copy, and with it the lock


def _store(place: reffiles.Place) -> Store | None:
    import pygit2

    from gitconvoy.state.store import Store

    try:
        return Store(pygit2.Repository(place.git_dir))
    except pygit2.GitError:
        return None


def writer_lock_file(common_dir: str) -> str:
    return os.path.join(common_dir, "convoy", "cold-writer.lock")


def _lock(common_dir: str, *, wait: bool) -> int | None:
    """The writer lock, held; None when it cannot be had (without `wait`: another cold
    read holds it, and writes what this one would; with `wait`: no cold read ever wrote
    here)."""
    import fcntl

    try:
        if wait:
            fd = os.open(writer_lock_file(common_dir), os.O_RDWR)
        else:
            os.makedirs(os.path.join(common_dir, "convoy"), exist_ok=True)
            fd = os.open(writer_lock_file(common_dir), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def wait_for_writer(common_dir: str) -> None:
    """Return once no cold read is still writing its caches here (for a test or a
    benchmark that looks at them next; a read never waits)."""
    lock = _lock(common_dir, wait=True)
    if lock is not None:
        os.close(lock)
