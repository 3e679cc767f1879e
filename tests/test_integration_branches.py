"""Integration branches: create (template, validation), status, land (gates, merge message,
epic closed before the branch goes)."""

from __future__ import annotations

import json

from conftest import convoy, git, ok, ref_of, workdir_state
from test_refinery_helpers import (
    add_rig,
    bead_json,
    hand_dispatch,
    mrs,
    new_task,
    set_check,
    worker_commit,
)

from gitconvoy.plan import targets
from gitconvoy.state.store import Store


def _epic_with_branch(repo, title="Auth Overhaul!"):
    add_rig()
    epic = ok("bead", "create", "--type", "epic", title)
    out = ok("integration", "create", epic)
    branch = f"integration/{epic}-auth-overhaul"
    assert out.startswith(f"created {branch} from main @ ")
    return epic, branch


def test_create_names_the_branch_from_the_template_and_records_it(state_repo):
    epic, branch = _epic_with_branch(state_repo)
    main = git("rev-parse", "main", cwd=state_repo)
    assert git("rev-parse", branch, cwd=state_repo) == main
    shown = bead_json(epic)
    assert (shown["integration_branch"], shown["target"], shown["base_commit"]) == \
        (branch, "main", main)
    res = convoy("integration", "create", epic)
    assert res.code == 1 and f"already has integration branch {branch}" in res.err


def test_create_validates_names_and_types(state_repo):
    add_rig()
    epic = ok("bead", "create", "--type", "epic", "E")
    task = new_task("t")
    before = ref_of(state_repo)
    res = convoy("integration", "create", epic, "--name", "bad..name")
    assert (res.code, res.err.strip()) == (
        1, "error: 'bad..name' is not a valid branch name (see git check-ref-format)")
    res = convoy("integration", "create", task)
    assert res.code == 1 and "is a task, not an epic" in res.err
    git("config", "convoy.integration.template", "feat/{epic}", cwd=state_repo)
    ok("integration", "create", epic)
    assert bead_json(epic)["integration_branch"] == f"feat/{epic}"
    assert ref_of(state_repo) != before


def test_tasks_of_the_epic_target_its_branch_and_the_epic_lands_as_one(state_repo):
    epic, branch = _epic_with_branch(state_repo)
    set_check(state_repo, "test -e shared.txt || test -e a.txt\n")
    a = new_task("Part A", "--parent", epic)
    b = new_task("Part B", "--parent", epic)
    snap = Store.open().snapshot()
    assert targets.target_for(snap.beads, snap.config, snap.bead(a)) == branch
    for bead, name in ((a, "a.txt"), (b, "b.txt")):
        work = hand_dispatch(state_repo, bead, target=branch)
        worker_commit(state_repo, work, {name: bead + "\n"})
        ok("done", bead)
    st = json.loads(ok("integration", "status", epic, "--json"))
    assert not st["ready"] and len(st["pending_mrs"]) == 2
    res = convoy("integration", "land", epic)
    assert res.code == 1 and "is not ready to land: 2 child bead(s) not closed" in res.err
    main_before = git("rev-parse", "main", cwd=state_repo)
    git("checkout", "-q", "-b", "mine", cwd=state_repo)
    user = workdir_state(state_repo)
    ok("refinery", "run")
    assert git("rev-parse", "main", cwd=state_repo) == main_before
    assert {m.target for m in mrs().values()} == {branch}
    st = json.loads(ok("integration", "status", epic, "--json"))
    assert st["ready"] and st["ahead"] == 4 and len(st["merged_mrs"]) == 2
    out = ok("integration", "land", epic)
    assert f"epic {epic} closed" in out and f"deleted {branch}" in out
    main = git("rev-parse", "main", cwd=state_repo)
    message = git("log", "-1", "--format=%B", main, cwd=state_repo)
    assert message.startswith(f"Land {branch} into main: Auth Overhaul!")
    assert f"Convoy-Epic: {epic}" in message
    assert git("show", "main:a.txt", cwd=state_repo) == a
    shown = bead_json(epic)
    assert shown["status"] == "closed" and shown["close_reason"].startswith(f"Landed {branch}")
    assert git("branch", "--list", branch, cwd=state_repo) == ""
    assert workdir_state(state_repo) == user
    log = git("log", "--format=%s", "convoy/state", cwd=state_repo).splitlines()
    assert any(s.startswith(f"integration land {epic}: {branch} → main") for s in log)


def test_land_refuses_an_empty_branch_and_a_failing_check(state_repo):
    epic, branch = _epic_with_branch(state_repo)
    before = ref_of(state_repo)
    res = convoy("integration", "land", epic)
    assert res.code == 1 and f"{branch} has no changes for main" in res.err
    assert ref_of(state_repo) == before
    task = new_task("x", "--parent", epic)
    work = hand_dispatch(state_repo, task, target=branch)
    worker_commit(state_repo, work, {"x.txt": "x\n"})
    ok("done", task)
    ok("refinery", "run")
    set_check(state_repo, "echo no; exit 3\n")
    main = git("rev-parse", "main", cwd=state_repo)
    res = convoy("integration", "land", epic)
    assert res.code == 1 and "check failed (exit 3); log: " in res.err
    assert git("rev-parse", "main", cwd=state_repo) == main
    assert bead_json(epic)["status"] != "closed"
    assert git("rev-parse", branch, cwd=state_repo)


def test_status_text(state_repo):
    epic, branch = _epic_with_branch(state_repo)
    out = ok("integration", "status", epic)
    assert out.splitlines()[0] == f"{branch} → main: 0 ahead, 0 behind"
    assert f"not ready: {branch} has no changes for main" in out


def test_slung_tasks_of_the_epic_start_from_and_land_on_its_branch(state_repo):
    epic, branch = _epic_with_branch(state_repo)
    (state_repo / "ib.txt").write_text("only on the integration branch\n")
    git("checkout", "-q", branch, cwd=state_repo)
    git("add", "ib.txt", cwd=state_repo)
    git("commit", "-q", "-m", "integration-only", cwd=state_repo)
    git("checkout", "-q", "main", cwd=state_repo)
    ib_tip = git("rev-parse", branch, cwd=state_repo)
    task = new_task("Child", "--parent", epic)
    ok("sling", task)
    shown = bead_json(task)
    assert (shown["status"], shown["target"], shown["base_commit"]) == ("hooked", branch, ib_tip)
    worker_commit(state_repo, shown["branch"], {"child.txt": "c\n"})
    ok("done", task)
    ok("refinery", "run")
    assert git("show", f"{branch}:child.txt", cwd=state_repo) == "c"
    assert git("show", "main:child.txt", cwd=state_repo, check=False) == ""
    assert bead_json(task)["status"] == "closed"
