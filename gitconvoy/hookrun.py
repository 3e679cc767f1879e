"""What `git convoy hook <name>` does when a shim decided that something relevant moved.

One feeder step, then the watch list and the "seen" fingerprint are refreshed so the next
hook where nothing moved stays in the shell. A hook never fails the git command that fired
it: every error becomes one warning line on stderr and one line in
`.git/convoy/hook-errors.log`, which `git convoy doctor` shows.

A hook never holds git either: the feeder step it runs starts dispatch commands detached
(gitconvoy.flow.detached), leaves reviews to `git convoy feed`, and starts no dispatch after
`convoy.hookBudget` seconds (default 2; one dispatch is always allowed unless it is 0, so
every hook makes progress); what is left is said in one line and a feed is
marked due, so the next hook goes on.

Imports are lazy: the store (pygit2, yaml) is loaded only here, the feeder only once a state
ref exists.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gitconvoy.state.store import Store

HOOK_ENV = "CONVOY_IN_HOOK"
ERRORS_MAX_BYTES = 64 * 1024
ERRORS_KEEP_LINES = 200
DEFAULT_BUDGET = 2.0
BUDGET_KEY = "convoy.hookBudget"
OUT_OF_TIME = "hook budget spent"


def run_hook(name: str, args: list[str]) -> list[str]:
    """Run one feeder step for hook `name`; the report lines (errors are recorded, not raised)."""
    os.environ[HOOK_ENV] = "1"  # our own git calls (dispatch, sync) must not re-trigger us
    started = time.monotonic()
    store: Store | None = None
    try:
        if _gate_says_nothing_landed():
            return []
        from gitconvoy.state.store import Store

        store = Store.open()
        return _feed(store, started)
    except KeyboardInterrupt:
        return []
    except Exception as exc:  # a hook must never fail the user's git operation
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        record_error(store, name, message)
        from gitconvoy.render.text import inert

        sys.stderr.write(f"warning: gitconvoy: {name} hook: {inert(message)} (recorded; see "
                         "'git convoy doctor')\n")
        return []


def _gate_says_nothing_landed() -> bool:
    """The shims pass CONVOY_DIR (.git/convoy): then a move of targets alone that landed no
    in-flight work is recorded as seen without loading pygit2 or the state."""
    folder = os.environ.get("CONVOY_DIR")
    if not folder or not os.path.isdir(folder):
        return False
    from gitconvoy.git import hookgate

    needed, listing = hookgate.feed_needed(folder, os.path.dirname(os.path.abspath(folder)))
    if needed or listing is None:
        return False
    hookgate.record_seen(folder, listing)
    return True


def main_hook(name: str, args: list[str]) -> int:
    """`python -m gitconvoy hook NAME ARGS` without click: the report on stderr, exit 0."""
    lines = run_hook(name, args)
    if lines:  # feeder lines carry titles and names from the state: printed inert
        from gitconvoy.render.text import inert

        for line in lines:
            sys.stderr.write(f"gitconvoy: {inert(line)}\n")
    return 0


def parse_budget(value: str | None) -> float:
    """Seconds of feeder work a hook may do (`2`, `1.5s`, `500ms`; `0`: dispatch nothing)."""
    text = (value or "").strip().lower()
    scale = 0.001 if text.endswith("ms") else 1.0
    try:
        seconds = float(text.removesuffix("ms").removesuffix("s")) * scale
    except ValueError:
        return DEFAULT_BUDGET
    return seconds if seconds >= 0 else DEFAULT_BUDGET


def _feed(store: Store, started: float) -> list[str]:
    from gitconvoy.git import sync, watch
    from gitconvoy.state.snapshot import full_loads

    loads = full_loads()
    told = watch.take_feed_due(store) == OUT_OF_TIME  # an earlier hook said it already
    served = None
    try:
        lines = sync.absorb_fetched_state(store)
        if store.exists():
            from gitconvoy import cycle
            from gitconvoy.flow import feedview
            from gitconvoy.flow.feeder import Budget

            # the beads a step reads, carried from the last hook's view (no full load)
            served = feedview.serve(store)

            seconds = parse_budget(store.config_get(BUDGET_KEY))
            # one dispatch per hook even when the machine is slow; 0 means none at all
            budget = Budget(started + seconds, detach=True, floor=1 if seconds > 0 else 0)
            report = cycle.feed(store, budget=budget)
            lines += report.lines()
            if report.deferred:
                watch.mark_feed_due(store.common_dir, OUT_OF_TIME)
                if not told:
                    lines.append(
                        f"the hook's time budget ({BUDGET_KEY}) is spent: "
                        f"{len(report.deferred)} ready bead(s) not dispatched yet; run 'git "
                        "convoy feed' to finish now (the next hook goes on)")
    finally:
        # Also after a failure: one warning per relevant move, not one per git command
        # until someone fixes it (the error is recorded for doctor).
        watch.record_seen(store, watch.write_watch(store))
        if store.exists():
            from gitconvoy.flow import feedview

            feedview.save(store, served, loads)  # for the next hook, at the tree this feed left
    return _not_said_yet(store, lines)


SAID_FILE = "hook-said"  # the state commit, then the lines hooks printed at it


def _not_said_yet(store: Store, lines: list[str]) -> list[str]:
    """Lines no hook printed yet at this state commit: one git command fires several hooks
    (`git merge`: reference-transaction, then post-merge), and each feed would say again
    "epic …: every child is in …" for a state nothing changed in."""
    path = os.path.join(store.common_dir, "convoy", SAID_FILE)
    commit = store.state_commit() or ""
    try:
        with open(path, encoding="utf-8") as fh:
            said = fh.read().split("\n")
    except OSError:
        said = []
    before = set(said[1:]) if said[:1] == [commit] else set()
    fresh = [ln for ln in lines if ln not in before]
    if fresh:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("\n".join([commit, *sorted(before | set(fresh))]))
        except OSError:
            pass  # saying a line twice is the worst that can happen
    return fresh


def errors_log(store: Store | None) -> str | None:
    from gitconvoy.git import watch

    if store is None:
        return None
    return os.path.join(watch.convoy_dir(store), watch.ERRORS_FILE)


def record_error(store: Store | None, hook: str, message: str) -> None:
    """Append one line to the errors log (kept short); best effort, never raises."""
    try:
        path = errors_log(store)
        if path is None:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = " ".join(f"{stamp} {hook} {message}".split())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        if os.path.getsize(path) > ERRORS_MAX_BYTES:
            with open(path, encoding="utf-8", errors="replace") as fh:
                keep = fh.readlines()[-ERRORS_KEEP_LINES:]
            with open(path, "w", encoding="utf-8") as fh:
                fh.writelines(keep)
    except OSError:
        pass


def recent_errors(store: Store | None, limit: int = 5) -> tuple[int, list[str]]:
    """How many errors are recorded, and the last `limit` of them."""
    path = errors_log(store)
    if path is None:
        return 0, []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = [ln.rstrip("\n") for ln in fh if ln.strip()]
    except OSError:
        return 0, []
    return len(lines), lines[-limit:]
