"""Nothing dispatched is an error, and every ✗ line names the fix (issue 11).

`launch`, `sling` and `feed` exit 1 when they tried to dispatch and nothing was dispatched;
each ✗ line says what to do. A bead handed back keeps its last error and its next try, which
`bead show` and `status` show; a convoy whose ready beads only wait out a back-off is
"waiting for retry at T", not "stranded".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, git_convoy, ok

from gitconvoy.state.model import touched
from gitconvoy.state.store import Store


def show(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))


@pytest.fixture
def app(state_repo: Path) -> Path:
    """Rig `app` on main, its dispatch command to be chosen by each test."""
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    return state_repo


def dispatch_with(repo: Path, command: str) -> None:
    git("config", "convoy.rig.app.dispatch", command, cwd=repo)


def to_second(stamp: str) -> str:
    return stamp[:19] + "Z"


# --- feed exits 1 when every dispatch it tried failed -------------------------------------


def test_feed_exits_1_when_it_dispatched_nothing_it_tried(app):
    dispatch_with(app, "echo 'no worker free' >&2; exit 2")
    t1 = ok("bead", "create", "one")
    cid = ok("create", "batch", t1)  # dispatches nothing by itself

    proc = git_convoy("feed", cwd=app, check=False)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    next_try = show(t1)["dispatch"]["next_try"]
    assert proc.stdout.splitlines() == [
        f"✗ {t1}: dispatch command exited 2: no worker free: fix it, then git convoy sling "
        f"{t1} (the feeder retries it after {to_second(next_try)})"]
    assert proc.stderr.splitlines() == [
        "error: no dispatch succeeded: fix what each ✗ line names (the feeder retries)"]

    again = git_convoy("feed", "--json", cwd=app, check=False)  # backing off: nothing tried
    assert again.returncode == 0, again.stdout + again.stderr
    report = json.loads(again.stdout)
    assert report["dispatched"] == [] and report["stranded"] == []
    assert report["waiting"] == [{
        "convoy": cid, "next_try": next_try,
        "beads": [{"id": t1, "next_try": next_try,
                   "last_error": "dispatch command exited 2: no worker free: fix it, then "
                                 f"git convoy sling {t1}"}]}]


def test_feed_with_nothing_to_do_exits_0(app):
    dispatch_with(app, "exit 2")
    outside = ok("bead", "create", "outside")
    inside = ok("bead", "create", "inside", "--dep", outside)
    ok("create", "stuck", inside)

    assert git_convoy("feed", cwd=app).returncode == 0  # stranded: reported, not an error
    ok("bead", "close", outside, "--reason", "done")
    dispatch_with(app, "true")
    assert git_convoy("feed", cwd=app).returncode == 0


def test_feed_exits_0_when_one_dispatch_of_several_worked(app):
    dispatch_with(app, 'test "$CONVOY_TITLE" = works')
    ok("create", "mixed", ok("bead", "create", "works"), ok("bead", "create", "fails"))

    proc = git_convoy("feed", cwd=app, check=False)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line[0] for line in proc.stdout.splitlines()] == ["✓", "✗"]


# --- waiting for retry, not stranded -------------------------------------------------------


def test_a_convoy_backing_off_is_waiting_for_retry_not_stranded(app):
    dispatch_with(app, "./start-worker.sh")
    t1 = ok("bead", "create", "one")
    cid = ok("create", "batch", t1)
    git_convoy("feed", cwd=app, check=False)
    bead = show(t1)

    lines = git_convoy("feed", cwd=app).stdout.splitlines()

    error = bead["dispatch"]["last_error"]
    assert error == (f"dispatch command not found: ./start-worker.sh (relative to {app}): "
                     "fix git config convoy.rig.app.dispatch")
    assert lines == [f"convoy {cid} is waiting for retry at "
                     f"{to_second(bead['dispatch']['next_try'])} ({t1}: {error})"]


def test_bead_show_and_status_show_the_last_dispatch_error_and_next_try(app):
    dispatch_with(app, "exit 7")
    t1 = ok("bead", "create", "one")
    cid = ok("create", "batch", t1)
    git_convoy("feed", cwd=app, check=False)
    dispatch = show(t1)["dispatch"]
    error, when = dispatch["last_error"], to_second(dispatch["next_try"])

    assert f"  dispatch  last failed: {error}" in ok("bead", "show", t1).splitlines()
    [shown] = [ln for ln in ok("bead", "show", t1).splitlines() if ln.startswith("  next try")]
    assert shown.endswith(f" ({when})"), shown  # "in 29 s (…)": no age is asserted
    [row] = [line for line in ok("status", cid).splitlines() if t1 in line]
    assert row.endswith(f"✗ last dispatch failed: {error}; next try at {when}")


# --- each ✗ line names the fix --------------------------------------------------------------


def plan_integration_branch(epic: str, branch: str) -> None:
    """What `import` records for an epic: the branch's name, not yet cut."""
    Store.open().transact(
        lambda tx: tx.put(touched(tx.bead(epic), integration_branch=branch)), "plan")


def parked(repo: Path) -> tuple[str, str]:
    ok("rig", "park", "app")
    return ok("bead", "create", "one"), "rig app is parked: git convoy rig unpark app"


def planned_integration(repo: Path) -> tuple[str, str]:
    epic = ok("bead", "create", "--type", "epic", "Search")
    plan_integration_branch(epic, f"integration/{epic}-search")
    return ok("bead", "create", "one", "--parent", epic), (
        f"target branch integration/{epic}-search does not exist: "
        f"git convoy integration create {epic}")


def missing_target(repo: Path) -> tuple[str, str]:
    ok("rig", "update", "app", "--target", "release")
    return ok("bead", "create", "one"), (
        "target branch release does not exist: create it (git branch release <start-point>) "
        "or aim the work elsewhere (git convoy rig update app --target BRANCH)")


def not_found(repo: Path) -> tuple[str, str]:
    dispatch_with(repo, "./missing.sh --fast")
    return ok("bead", "create", "one"), (
        f"dispatch command not found: ./missing.sh --fast (relative to {repo}): fix git "
        "config convoy.rig.app.dispatch")


def diverged(repo: Path) -> tuple[str, str]:
    """Someone else's branch of the bead's name, with commits the target lacks."""
    t1 = ok("bead", "create", "one")
    git("switch", "-q", "-c", f"convoy/{t1}", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "not this bead's work", cwd=repo)
    git("switch", "-q", "main", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "main moves on", cwd=repo)
    return t1, (f"branch convoy/{t1} exists and has diverged from its target: rename or "
                f"delete it (git branch -m convoy/{t1} convoy/{t1}-old) (the feeder retries "
                "it after ")


@pytest.mark.parametrize("cause", [parked, planned_integration, missing_target, not_found,
                                   diverged])
def test_every_not_dispatched_line_names_the_fix(app, cause):
    dispatch_with(app, "true")
    t1, fix = cause(app)

    proc = git_convoy("sling", t1, cwd=app, check=False)

    assert proc.returncode == 1
    [line] = [ln for ln in proc.stdout.splitlines() if "✗" in ln]
    assert line.startswith(f"  ✗ {t1}: "), line
    assert fix in line, line
    assert show(t1)["status"] == "open"
