"""Dispatch commands started by hooks: detached, logged, their exit status kept.

A hook must never hold the git command that fired it, so there the rig's dispatch command
runs detached (gitconvoy.procs.start_detached) behind a small `sh` wrapper that waits for it
and writes its exit status to a file beside its log:

    .git/convoy/logs/dispatch-<bead>-<time>-<rand>.log    the command's stdout and stderr
    .git/convoy/logs/dispatch-<bead>-<time>-<rand>.exit   its exit status, once it ended
    .git/convoy/dispatches/<bead>.json                    the bead's last detached run

For a detached command, "dispatched" means "started": the bead is hooked when the command
starts. When it ends with a non-zero status, the next feeder step hands the bead back exactly
as a failed foreground dispatch does (open, the reason and the log recorded, retried after a
back-off) unless its worker already committed; `doctor` and `status` show the failure from
these files at once. A run whose wrapper vanished without an exit status (killed, reboot)
is only reported: nobody can tell whether its worker started.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from gitconvoy import procs
from gitconvoy.git import watch
from gitconvoy.state.model import Bead, now
from gitconvoy.state.store import Store

RUNS_DIR = "dispatches"
LOGS_DIR = "logs"

# $1: the rig's command, run by sh as a foreground dispatch would be; $2: the status file,
# written whole (tmp + rename) when the command ends, whatever its exit status.
WRAPPER = (
    '/bin/sh -c "$1"; rc=$?\n'
    'printf "\\n# exit %s at %s\\n" "$rc" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"\n'
    'printf "%s\\n" "$rc" > "$2.tmp" && mv -f "$2.tmp" "$2"\n'
    'exit "$rc"\n'
)


@dataclass
class Run:
    """One detached dispatch of a bead, as recorded when it started."""

    bead: str
    attempt: str  # which claim of the bead it served (attempts@last_attempt)
    pid: int
    log: str
    status_file: str
    started: str
    exit: int | None = None

    @property
    def state(self) -> str:
        """running | ok | failed | lost (ended without leaving an exit status)."""
        if self.exit is not None:
            return "ok" if self.exit == 0 else "failed"
        return "running" if procs.alive(self.pid) else "lost"

    def problem(self) -> str | None:
        """One phrase for a run that went wrong, with where to read why; None otherwise."""
        state = self.state
        if state == "failed":
            return f"dispatch command exited {self.exit}; log: {self.log}"
        if state == "lost":
            return f"dispatch command ended without an exit status (killed?); log: {self.log}"
        return None


def attempt_of(bead: Bead) -> str:
    """The claim a run belongs to: a later dispatch of the bead is a different attempt."""
    return f"{bead.dispatch.get('attempts', 0)}@{bead.dispatch.get('last_attempt', '')}"


def _runs_dir(store: Store) -> str:
    return os.path.join(watch.convoy_dir(store), RUNS_DIR)


def start(store: Store, bead: Bead, command: str, *, cwd: str, env: dict[str, str]) -> Run:
    """Start the rig's command for `bead` detached; raises OSError if it cannot start."""
    import tempfile  # here, not at the top: a hook with nothing to dispatch does not pay

    logs = os.path.join(watch.convoy_dir(store), LOGS_DIR)
    os.makedirs(logs, exist_ok=True)
    os.makedirs(_runs_dir(store), exist_ok=True)
    stamp = now().replace(":", "").replace("-", "").replace(".", "")
    fd, log = tempfile.mkstemp(prefix=f"dispatch-{bead.id}-{stamp}-", suffix=".log", dir=logs)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"$ {command}\n# bead {bead.id}, started {now()}, in {cwd}\n")
    status_file = log[: -len(".log")] + ".exit"
    pid = procs.start_detached(["/bin/sh", "-c", WRAPPER, "gitconvoy-dispatch", command,
                                status_file], cwd=cwd, env=env, log=log)
    run = Run(bead.id, attempt_of(bead), pid, log, status_file, now())
    _write_record(store, run)
    return run


def _write_record(store: Store, run: Run) -> None:
    import json

    data = asdict(run)
    data.pop("exit")
    path = os.path.join(_runs_dir(store), f"{run.bead}.json")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _read_exit(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _load(path: str) -> Run | None:
    if not os.path.exists(path):
        return None
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        run = Run(**{k: data[k] for k in ("bead", "attempt", "pid", "log", "status_file",
                                          "started")})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    run.exit = _read_exit(run.status_file)
    return run


def run_of(store: Store, bead_id: str) -> Run | None:
    """The bead's last detached run, if it had one (the feeder asks for hooked beads only,
    so its cost follows the work in flight, not every bead ever dispatched)."""
    return _load(os.path.join(_runs_dir(store), f"{bead_id}.json"))


def runs(store: Store) -> dict[str, Run]:
    """The last detached run of each bead that had one (unreadable records are skipped)."""
    folder = _runs_dir(store)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return {}
    loaded = (_load(os.path.join(folder, name)) for name in names)
    return {run.bead: run for run in loaded if run is not None}


def current_problem(run: Run | None, bead: Bead) -> str | None:
    """What went wrong with the run that serves the bead's current claim, if anything."""
    if run is None or bead.status != "hooked" or run.attempt != attempt_of(bead):
        return None
    return run.problem()


def forget_problems(store: Store) -> int:
    """`doctor --clear-errors`: drop the records of failed and lost runs (logs stay)."""
    dropped = 0
    for run in runs(store).values():
        if run.problem() is None:
            continue
        try:
            os.remove(os.path.join(_runs_dir(store), f"{run.bead}.json"))
            dropped += 1
        except OSError:
            pass
    return dropped
