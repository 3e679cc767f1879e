"""Conflicts: a conflict bead blocks the work, the MR is retried when it closes, old
conflicts escalate once."""

from __future__ import annotations

import json

from conftest import convoy, eventually, git, git_convoy, ok, stuck
from test_refinery_helpers import (
    add_rig,
    bead_json,
    file_at,
    hand_dispatch,
    mrs,
    new_task,
    status_json,
    worker_commit,
)


def _two_conflicting(repo):
    add_rig()
    first, second = new_task("Edit config one way"), new_task("Edit config another way")
    b1, b2 = hand_dispatch(repo, first), hand_dispatch(repo, second)
    worker_commit(repo, b1, {"config.ini": "mode = fast\n"})
    worker_commit(repo, b2, {"config.ini": "mode = safe\n", "other.txt": "o\n"})
    ok("done", first)
    ok("done", second)
    git("checkout", "-q", "-b", "mine", cwd=repo)
    return first, second, b2


def _conflict_of(second):
    [mr] = [m for m in mrs().values() if m.bead == second and m.open]
    return mr


def test_conflict_makes_a_blocking_conflict_bead(state_repo):
    first, second, _ = _two_conflicting(state_repo)
    out = stuck("refinery", "run")
    assert "conflict" in out
    mr = _conflict_of(second)
    assert mr.status == "conflict" and mr.conflict_files == ["config.ini"]
    assert mr.conflict_since and mr.retries == 1
    blocker = bead_json(mr.conflict_bead)
    assert blocker["title"] == "Resolve merge conflicts: Edit config another way"
    assert "  - config.ini" in blocker["description"]
    assert blocker["labels"] == ["conflict"] and blocker["status"] == "open"
    assert {"on": mr.conflict_bead, "type": "blocks"} in bead_json(second)["deps"]
    assert bead_json(first)["status"] == "closed"
    assert bead_json(second)["status"] == "in_progress"
    # a second run neither duplicates the conflict bead nor retries the blocked MR
    ok("refinery", "run")
    assert _conflict_of(second).conflict_bead == mr.conflict_bead
    assert sum(1 for b in ok("bead", "list").splitlines() if "Resolve merge" in b) == 1


def test_resolving_and_closing_the_conflict_bead_retries_the_mr(state_repo):
    first, second, branch = _two_conflicting(state_repo)
    stuck("refinery", "run")
    mr = _conflict_of(second)
    wt = state_repo.parent / ("wt-" + branch.replace("/", "-"))
    git("merge", "-q", "main", cwd=wt, check=False)
    (wt / "config.ini").write_text("mode = safe-and-fast\n")
    git("add", "config.ini", cwd=wt)
    git("commit", "-q", "--no-edit", cwd=wt)
    resolved = git("rev-parse", "HEAD", cwd=wt)
    ok("bead", "close", mr.conflict_bead, "--reason", "resolved")
    out = ok("refinery", "run")
    assert f"notice: {mr.id}: conflict bead {mr.conflict_bead} closed, requeued" in out
    assert "landed" in out
    landed = [m for m in mrs().values() if m.id == mr.id][0]
    assert landed.status == "merged" and landed.commit == resolved
    assert file_at(state_repo, "main", "config.ini") == "mode = safe-and-fast"
    assert bead_json(second)["status"] == "closed"


def test_done_after_resolving_supersedes_and_closes_the_conflict_bead(state_repo):
    first, second, branch = _two_conflicting(state_repo)
    stuck("refinery", "run")
    mr = _conflict_of(second)
    wt = state_repo.parent / ("wt-" + branch.replace("/", "-"))
    git("merge", "-q", "main", cwd=wt, check=False)
    (wt / "config.ini").write_text("mode = both\n")
    git("add", "config.ini", cwd=wt)
    git("commit", "-q", "--no-edit", cwd=wt)
    ok("done", second)
    blocker = bead_json(mr.conflict_bead)
    assert blocker["status"] == "closed"
    assert blocker["close_reason"].startswith("resolved: superseded by mr-")
    ok("refinery", "run")
    assert bead_json(second)["status"] == "closed"
    assert file_at(state_repo, "main", "config.ini") == "mode = both"


def test_old_conflicts_escalate_once(state_repo, monkeypatch):
    first, second, _ = _two_conflicting(state_repo)
    stuck("refinery", "run")
    mr = _conflict_of(second)
    git("config", "convoy.refinery.escalateAfter", "2h", cwd=state_repo)
    monkeypatch.setenv("CONVOY_NOW", "2099-01-01T00:00:00.000000Z")
    assert "conflict_escalated" in [a["kind"] for a in status_json()["anomalies"]]
    out = ok("refinery", "run")
    notices = [line for line in out.splitlines() if line.startswith("notice: escalated:")]
    assert len(notices) == 1
    assert mr.id in notices[0] and "config.ini" in notices[0] and mr.conflict_bead in notices[0]
    assert "escalated" in bead_json(mr.conflict_bead)["labels"]
    assert _conflict_of(second).escalated
    again = ok("refinery", "run")
    assert "escalated" not in again


# --- conflicts go to a worker (issue 10) ----------------------------------------------------


def convoy_in(where, *args):
    import os

    here = os.getcwd()
    os.chdir(where)
    try:
        return convoy(*args)
    finally:
        os.chdir(here)


def _logging_dispatch(repo):
    log = repo.parent / "dispatched.log"
    script = repo.parent / "dispatch.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s|%s|%s|%s|%s\\n" "$CONVOY_BEAD" "$CONVOY_BRANCH" "$CONVOY_RESOLVES" '
        f'"$CONVOY_CONFLICT_FILES" "$CONVOY_TARGET_TIP" >> {log}\n')
    script.chmod(0o755)
    git("config", "convoy.rig.app.dispatch", str(script), cwd=repo)
    return log


def test_a_conflict_bead_joins_the_convoy_and_goes_to_a_worker_on_the_works_branch(
        state_repo):
    """Issue 10's sighting: the conflict bead blocked the work, was tracked by no convoy and
    was never dispatched. Now it joins the convoy, is dispatched on the conflicting branch
    (borrowing its bead's rig slot) with the files and the target's tip, and once its work
    lands the original bead and the convoy close."""
    add_rig(capacity=2)
    log = _logging_dispatch(state_repo)
    first, second = new_task("Edit config one way"), new_task("Edit config another way")
    third = new_task("Unrelated")
    ok("dep", "add", third, first)
    convoy_id = ok("create", "Conflicts", first, second, third)
    ok("feed")
    for bead, text in ((first, "fast"), (second, "safe")):
        worker_commit(state_repo, f"convoy/{bead}", {"config.ini": f"mode = {text}\n"})
        ok("done", bead)
    out = stuck("refinery", "run")  # first lands (third is dispatched), second conflicts
    mr = _conflict_of(second)
    blocker = mr.conflict_bead
    tracks = json.loads(ok("status", convoy_id, "--json"))
    assert blocker in [b["id"] for b in tracks["beads"]], tracks
    tip = git("rev-parse", "main", cwd=state_repo)
    lines = log.read_text().splitlines()
    assert f"{blocker}|convoy/{second}|{second}|config.ini|{tip}" in lines, (lines, out)
    assert bead_json(third)["status"] == "hooked"  # the rig was full: the blocker borrowed
    assert bead_json(blocker)["status"] == "hooked"
    assert bead_json(blocker)["branch"] == f"convoy/{second}"
    # the worker resolves on the work's branch and says done
    wt = state_repo.parent / f"wt-convoy-{second}"
    git("merge", "-q", "main", cwd=wt, check=False)
    (wt / "config.ini").write_text("mode = both\n")
    git("add", "config.ini", cwd=wt)
    git("commit", "-q", "--no-edit", cwd=wt)
    done = convoy_in(wt, "done")  # on the branch: the bead it holds is second's
    assert done.code == 0 and f"(bead {second})" in done.out, done
    assert bead_json(blocker)["close_reason"].startswith("resolved: superseded by mr-")
    ok("refinery", "run")
    assert bead_json(second)["status"] == "closed"
    assert file_at(state_repo, "main", "config.ini") == "mode = both"
    worker_commit(state_repo, f"convoy/{third}", {"third.txt": "3\n"})
    ok("done", third)
    out = ok("refinery", "run")
    assert f"convoy {convoy_id}" in out and "landed" in out, out
    assert json.loads(ok("status", convoy_id, "--json"))["status"] == "closed"


def test_an_escalated_conflict_runs_the_local_notifier_once_with_a_json_event(
        state_repo, monkeypatch):
    first, second, _ = _two_conflicting(state_repo)
    stuck("refinery", "run")
    mr = _conflict_of(second)
    events = state_repo.parent / "events.jsonl"
    notifier = state_repo.parent / "notify.sh"
    notifier.write_text(f"#!/bin/sh\ncat >> {events}\n")
    notifier.chmod(0o755)
    git("config", "convoy.notify", str(notifier), cwd=state_repo)
    git("config", "convoy.conflictEscalateAfter", "1h", cwd=state_repo)
    monkeypatch.setenv("CONVOY_NOW", "2099-01-01T00:00:00.000000Z")
    ok("refinery", "run")
    eventually("the notifier (it runs detached)", events.exists)
    ok("refinery", "run")
    [event] = [json.loads(line) for line in events.read_text().splitlines()]
    assert (event["event"], event["mr"], event["bead"], event["conflict_bead"]) == \
        ("conflict_escalated", mr.id, second, mr.conflict_bead)
    assert event["files"] == ["config.ini"] and event["age_seconds"] > 3600


# --- the run's line names the files, the conflict bead and what to do (issue 11) -------------


def _conflicting_files(repo, names):
    """Two tasks that edit the same files two ways; both queued, the first lands first."""
    add_rig()
    first, second = new_task("One way"), new_task("Another way")
    for task, text in ((first, "one\n"), (second, "another\n")):
        worker_commit(repo, hand_dispatch(repo, task), {name: text for name in names})
        ok("done", task)
    return first, second


def test_the_conflict_line_names_the_files_and_the_conflict_bead(state_repo):
    first, second = _conflicting_files(state_repo, ["src/a.py", "config.ini"])

    proc = git_convoy("refinery", "run", cwd=state_repo, check=False)

    assert proc.returncode == 3
    mr = _conflict_of(second)
    assert (f"{mr.id} ({second}): conflict: config.ini, src/a.py: conflict bead "
            f"{mr.conflict_bead} waits for a worker (git convoy sling {mr.conflict_bead}); or "
            f"resolve on convoy/{second}, then git convoy done") in proc.stdout.splitlines()


def test_a_conflict_in_a_convoy_goes_to_a_worker_and_many_files_are_counted(state_repo):
    names = [f"f{i}.txt" for i in range(5)]
    first, second = _conflicting_files(state_repo, names)
    ok("create", "both", first, second)

    proc = git_convoy("refinery", "run", cwd=state_repo, check=False)

    assert proc.returncode == 3
    mr = _conflict_of(second)
    assert (f"{mr.id} ({second}): conflict: f0.txt, f1.txt, f2.txt and 2 more: conflict bead "
            f"{mr.conflict_bead} goes to a worker; or resolve on convoy/{second}, then git "
            "convoy done") in proc.stdout.splitlines()
