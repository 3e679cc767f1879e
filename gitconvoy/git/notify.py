"""`convoy.notify`: tell a person (or a bot) that something needs them, once per event.

The command comes only from the local user's settings (git config `convoy.notify`, or
`[notify] command` in the trusted `.convoy/config.toml`, gitconvoy.git.localconfig): the
state branch can name no command. Each event is one JSON document, written to
`.git/convoy/events/<event>-….json` and given to the command on stdin (and named by
CONVOY_EVENT_FILE; CONVOY_EVENT is its kind); nothing from the state is spliced into the
command line. The command runs detached, its output and exit status in the `.log` beside
the event: a notifier never holds the git operation or the landing that triggered it, a
failing one is recorded there once and never retried.

Events: convoy_launched, convoy_landed, convoy_stranded, conflict_escalated,
check_failures_escalated, claim_expired.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from gitconvoy import procs
from gitconvoy.git import localconfig
from gitconvoy.state.model import now
from gitconvoy.state.store import Store

EVENTS_DIR = "events"
KEEP = 200  # event files (and their logs) kept; older ones are pruned on the next send
# $1: the command, run by sh with the event on stdin; $2: the event file
WRAPPER = ('/bin/sh -c "$1" < "$2"; rc=$?\n'
           'printf "# exit %s at %s\\n" "$rc" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"\n'
           'exit "$rc"\n')


def command(store: Store) -> str | None:
    return localconfig.lookup(store, "convoy.notify", "notify", "command").value


def events_dir(store: Store) -> str:
    return os.path.join(store.common_dir, "convoy", EVENTS_DIR)


def send(store: Store, event: dict[str, Any]) -> str | None:
    """Start the notifier for `event`; None when it started (or none is set), else why not."""
    cmd = command(store)
    if not cmd:
        return None
    import tempfile

    folder = events_dir(store)
    os.makedirs(folder, exist_ok=True)
    kind = str(event.get("event", "event"))
    stamp = now().replace(":", "").replace("-", "").replace(".", "")
    fd, path = tempfile.mkstemp(prefix=f"{kind}-{stamp}-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({**event, "at": now()}, out, sort_keys=True)
        out.write("\n")
    env = {**os.environ, "CONVOY_EVENT": kind, "CONVOY_EVENT_FILE": path}
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    try:
        procs.start_detached(["/bin/sh", "-c", WRAPPER, "gitconvoy-notify", cmd, path],
                             cwd=localconfig.command_dir(store), env=env,
                             log=path[: -len(".json")] + ".log")
    except OSError as exc:
        return f"convoy.notify could not start: {exc.strerror}"
    _prune(folder)
    return None


def _prune(folder: str) -> None:
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return
    for name in names[:-KEEP] if len(names) > KEEP else []:
        for suffix in (".json", ".log"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(folder, name[: -len(".json")] + suffix))
