"""Shared helpers for the refinery tests: rigs, hand-made dispatches, worker commits.

Workers commit in their own linked worktree (as a dispatched worker would), so the user's
checkout in the main worktree is never the one that changes.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, ok

from gitconvoy.state.model import Rig, now, touched
from gitconvoy.state.store import Store


def add_rig(name: str = "app", target: str = "main", strategy: str = "merge",
            capacity: int = 3) -> None:
    store = Store.open()

    def mutate(tx):
        cfg = tx.config
        rigs = dict(cfg.rigs)
        rigs[name] = Rig(name=name, target=target, capacity=capacity, strategy=strategy)
        tx.put_config(touched(cfg, rigs=rigs))

    store.transact(mutate, f"rig add {name}")


def set_check(repo: Path, script: str, rig: str = "app") -> Path:
    """A real check command: a tiny shell script outside the repository."""
    path = repo.parent / f"check-{rig}.sh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    git("config", f"convoy.rig.{rig}.check", str(path), cwd=repo)
    return path


def new_task(title: str, *extra: str) -> str:
    return ok("bead", "create", title, *extra)


def hand_dispatch(repo: Path, bead_id: str, rig: str = "app", target: str = "main") -> str:
    """What dispatch does: branch convoy/<id> from the target, bead hooked with its base."""
    tip = git("rev-parse", target, cwd=repo)
    branch = f"convoy/{bead_id}"
    git("branch", branch, tip, cwd=repo)
    store = Store.open(str(repo))

    def mutate(tx):
        bead = tx.bead(bead_id)
        tx.put(touched(bead, status="hooked", assignee=f"{rig}-worker", rig=rig,
                       branch=branch, target=target, base_commit=tip, started_at=now()))

    store.transact(mutate, f"dispatch {bead_id}")
    return branch


def worker_commit(repo: Path, branch: str, files: dict[str, str], message: str = "work",
                  ) -> str:
    """Commit on `branch` in the worker's own worktree (created on first use)."""
    wt = repo.parent / ("wt-" + branch.replace("/", "-"))
    if not wt.exists():
        git("worktree", "add", "-q", str(wt), branch, cwd=repo)
    for name, text in files.items():
        target = wt / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        git("add", name, cwd=wt)
    git("commit", "-q", "-m", message, cwd=wt)
    return git("rev-parse", "HEAD", cwd=wt)


def drop_worktree(repo: Path, branch: str) -> None:
    wt = repo.parent / ("wt-" + branch.replace("/", "-"))
    if wt.exists():
        git("worktree", "remove", "--force", str(wt), cwd=repo)


def bead_json(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))


def mrs() -> dict:
    snap = Store.open().snapshot()
    return dict(snap.objects["mrs"])


def status_json() -> dict:
    return json.loads(ok("refinery", "status", "--json"))


def file_at(repo: Path, rev: str, path: str) -> str:
    return git("show", f"{rev}:{path}", cwd=repo)
