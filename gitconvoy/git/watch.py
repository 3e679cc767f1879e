"""Which refs wake the feeder, in a form the hook shims can read without starting Python.

`.git/convoy/watch` holds one ref pattern a line (a literal ref or a glob whose `*` stays
within one path component, as `git for-each-ref` and the shell's `case` both read it): the
state ref, the work branches, the targets and the remote-tracking copies of each. The
reference-transaction shim matches moved refs against it; the other shims compare
`git for-each-ref <patterns>` with `.git/convoy/hook-seen`, the same listing saved after the
last feed, and start Python only when they differ.

Written by `hooks install`, after every hook run and by anyone who changes targets (the
feeder may call `write_watch`); a stale file only delays a feed until the state ref moves,
which is itself watched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from gitconvoy.errors import ConvoyError
from gitconvoy.git.gitcli import run_git
from gitconvoy.git.hookgate import (  # noqa: F401  (re-exported: one name for each runtime file)
    ERRORS_FILE,
    FEED_DUE_FILE,
    FOR_EACH_REF_FORMAT,
    INFLIGHT_FILE,
    SEEN_FILE,
    WATCH_FILE,
    InFlight,
)
from gitconvoy.state.model import IN_FLIGHT
from gitconvoy.state.snapshot import Snapshot
from gitconvoy.state.store import Store

WORK_BRANCHES = "convoy/*"
# `<ref> <bead>` per live work branch: the prepare-commit-msg shim adds the bead's trailer.
WORK_BRANCHES_FILE = "work-branches"


def convoy_dir(store: Store) -> str:
    """`.git/convoy` in the common dir: shared by every linked worktree."""
    return os.path.join(store.common_dir, "convoy")


def _branch_patterns(branch: str) -> list[str]:
    """A branch and its remote-tracking copies on every remote."""
    return [f"refs/heads/{branch}", f"refs/remotes/*/{branch}"]


def watch_patterns(state_ref: str, snap: Snapshot | None) -> list[str]:
    """The refs whose moves matter to the feeder (pure; sorted, no duplicates)."""
    return _patterns(state_ref, _scan(snap) if snap is not None else None)


def _patterns(state_ref: str, scan: _Scan | None) -> list[str]:
    patterns: set[str] = {state_ref, *_branch_patterns(WORK_BRANCHES)}
    if state_ref.startswith("refs/heads/"):
        patterns.update(_branch_patterns(state_ref[len("refs/heads/"):]))
    if scan is not None:
        patterns.update(p for b in scan.branches for p in _branch_patterns(b))
    return sorted(patterns)


@dataclass
class _Scan:
    """What the three runtime files need from the beads, gathered in one pass (at 100k
    beads each pass costs tens of milliseconds, and a hook used to make six)."""

    # Live work branches and, only while work is in flight, the targets it can land on.
    # A target that moves while nothing is in flight cannot land anything, and a ready bead
    # becomes dispatchable through state changes (watched), never through a target moving:
    # so an ordinary pull on main wakes no Python until a convoy has work out.
    branches: set[str] = field(default_factory=set)
    in_flight: InFlight = field(default_factory=InFlight)
    # `refs/heads/<branch> <bead>` rows for beads not done with a work branch; a branch that
    # is also a target or an integration branch is left out (commits there are not one
    # bead's work)
    work_rows: list[str] = field(default_factory=list)


def _scan(snap: Snapshot) -> _Scan:
    scan = _Scan()
    found = scan.in_flight
    rig_targets = {rig.target for rig in snap.config.rigs.values()}
    shared = set(rig_targets) | snap.outside_targets  # a partial snapshot: the rest's
    work: list[tuple[str, str]] = []
    live = flying = snap.outside_flying  # a partial snapshot: beads it left out
    for bead in snap.beads.values():
        if bead.target:
            shared.add(bead.target)
        if bead.integration_branch:
            shared.add(bead.integration_branch)
        if bead.done:
            continue
        if bead.branch or bead.status in IN_FLIGHT or bead.integration_branch:
            live = True
            scan.branches.update(b for b in (bead.branch, bead.target, bead.integration_branch)
                                 if b)
        if bead.status in IN_FLIGHT:
            flying = True
            if bead.target:
                found.targets.add(bead.target)
            if bead.branch and bead.base_commit:
                found.beads[bead.id] = (f"refs/heads/{bead.branch}", bead.base_commit)
        if bead.branch and bead.slingable:
            work.append((bead.branch, bead.id))
    if live:
        scan.branches |= rig_targets
        scan.branches.update(c.target for c in snap.convoys.values()
                             if c.target and c.status != "closed")
    if flying:
        found.targets |= rig_targets
    scan.work_rows = sorted(f"refs/heads/{branch} {bead_id}\n" for branch, bead_id in work
                            if branch not in shared)
    return scan


def _write_if_changed(path: str, text: str) -> None:
    """Compared as bytes: a file of any bytes (a crash, a disk error) is stale, rewritten."""
    try:
        with open(path, "rb") as fh:
            if fh.read() == text.encode("utf-8"):
                return
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_watch(store: Store) -> list[str]:
    """The watched ref patterns; a file that is not text, or lines that are not ref
    patterns, count as absent (the next hook or `hooks install` rewrites it)."""
    try:
        with open(os.path.join(convoy_dir(store), WATCH_FILE), "rb") as fh:
            text = fh.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line.strip() for line in text.splitlines()
            if line.strip().startswith("refs/") and line.strip().isprintable()]


def in_flight(snap: Snapshot | None) -> InFlight:
    """What the hook gate needs to tell "a target moved" from "work landed" (pure)."""
    return _scan(snap).in_flight if snap is not None else InFlight()


def write_watch(store: Store, snap: Snapshot | None = None) -> list[str]:
    """Refresh `.git/convoy/watch` and `inflight` from the state (rewritten only when they
    changed)."""
    if snap is None and store.exists():
        snap = store.snapshot()
    scan = _scan(snap) if snap is not None else None
    patterns = _patterns(store.ref, scan)
    folder = convoy_dir(store)
    flying = scan.in_flight if scan is not None else InFlight()
    _write_if_changed(os.path.join(folder, INFLIGHT_FILE), flying.render())
    _write_if_changed(os.path.join(folder, WATCH_FILE), "".join(f"{p}\n" for p in patterns))
    _write_if_changed(os.path.join(folder, WORK_BRANCHES_FILE),
                      "".join(scan.work_rows) if scan is not None else "")
    return patterns


def work_branches(snap: Snapshot | None) -> str:
    """`refs/heads/<branch> <bead>` for every bead not yet done that has a work branch (pure).
    A branch that is also a target or an integration branch is left out: commits there are
    not one bead's work."""
    return "".join(_scan(snap).work_rows) if snap is not None else ""


def refresh_if_installed(store: Store) -> None:
    """After a dispatch puts work in flight, its branch and target must wake the hooks.
    Best effort, and only where hooks are installed (the watch file exists)."""
    try:
        if os.path.exists(os.path.join(convoy_dir(store), WATCH_FILE)):
            write_watch(store)
    except (OSError, ConvoyError):
        pass


def fingerprint(store: Store, patterns: list[str]) -> str:
    """What the post-* shims compare: `git for-each-ref` over the watched refs, as the shell's
    `$(…)` sees it (trailing newline stripped)."""
    res = run_git(["for-each-ref", FOR_EACH_REF_FORMAT, *patterns],
                  git_dir=store.repo.path, check=False)
    return res.out.rstrip("\n") if res.code == 0 else ""


def record_seen(store: Store, patterns: list[str] | None = None) -> None:
    """Remember the watched refs as fed, so the next hook where nothing moved stays in sh."""
    if patterns is None:
        patterns = read_watch(store)
    _write_if_changed(os.path.join(convoy_dir(store), SEEN_FILE), fingerprint(store, patterns))


def mark_feed_due(common_dir: str, why: str = "") -> None:
    """The next hook runs a feed even if no watched ref moved: left by the merge driver, and
    by a hook that ran out of time (`why` says so; the first reason written stays)."""
    path = os.path.join(common_dir, "convoy", FEED_DUE_FILE)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            if why and fh.tell() == 0:
                fh.write(why + "\n")
    except OSError:
        pass


def take_feed_due(store: Store) -> str | None:
    """Consume the feed-due marker; why it was left ("" when nobody said), or None."""
    path = os.path.join(convoy_dir(store), FEED_DUE_FILE)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4096)
        os.remove(path)
    except OSError:
        return None
    # a runtime file may hold any bytes (a crash, a hand edit): the reason is only shown
    return raw.decode("utf-8", "replace").strip()
