"""`convoy.notify`: tell a person (or a bot) that something needs them, once.

The command comes only from the local user's settings (git config `convoy.notify`, or
`[notify] command` in the trusted `.convoy/config.toml`, gitconvoy.git.localconfig): the
state branch can name no command. It runs through `sh -c` with one JSON event on stdin and
CONVOY_EVENT in its environment; nothing from the state is spliced into the command line.
It is bounded (NOTIFY_TIMEOUT) and its failure is reported, never raised: a broken notifier
must not stop the refinery from landing the rest of the queue.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from gitconvoy.git import localconfig
from gitconvoy.state.store import Store

NOTIFY_TIMEOUT = 30


def command(store: Store) -> str | None:
    return localconfig.lookup(store, "convoy.notify", "notify", "command").value


def send(store: Store, event: dict[str, Any]) -> str | None:
    """Run the notifier with `event`; None when it ran (or none is set), else why not."""
    cmd = command(store)
    if not cmd:
        return None
    env = {**os.environ, "CONVOY_EVENT": str(event.get("event", ""))}
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)
    try:
        proc = subprocess.run(cmd, shell=True, input=json.dumps(event, sort_keys=True) + "\n",
                              cwd=localconfig.command_dir(store), env=env,
                              capture_output=True, text=True, timeout=NOTIFY_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"convoy.notify timed out after {NOTIFY_TIMEOUT}s"
    except OSError as exc:
        return f"convoy.notify could not start: {exc.strerror}"
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
        return f"convoy.notify exited {proc.returncode}: {last[0][:200]}"
    return None
