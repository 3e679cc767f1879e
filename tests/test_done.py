"""`git convoy done`: one transaction that queues an MR and links it from its bead."""

from __future__ import annotations

from conftest import convoy, git, ok, ref_of
from test_refinery_helpers import (
    add_rig,
    bead_json,
    hand_dispatch,
    mrs,
    new_task,
    worker_commit,
)


def _dispatched(repo, title="Add feature"):
    add_rig()
    bead = new_task(title)
    branch = hand_dispatch(repo, bead)
    return bead, branch


def test_done_on_the_work_branch_queues_one_mr(state_repo, chdir):
    bead, branch = _dispatched(state_repo)
    tip = worker_commit(state_repo, branch, {"feature.txt": "x\n"})
    wt = state_repo.parent / ("wt-" + branch.replace("/", "-"))
    chdir(wt)
    before = ref_of(state_repo)
    out = ok("done")
    assert out.startswith("queued mr-") and branch in out
    [mr] = mrs().values()
    assert (mr.bead, mr.branch, mr.commit, mr.target, mr.status) == \
        (bead, branch, tip, "main", "queued")
    assert mr.worker == "app-worker" and mr.created_at and mr.retries == 0
    shown = bead_json(bead)
    assert shown["mr"] == mr.id and shown["status"] == "in_progress"
    log = git("log", "--format=%s", f"{before}..convoy/state", cwd=state_repo).splitlines()
    assert len(log) == 1 and log[0].startswith(f"done {bead}: queue {mr.id}")


def test_done_twice_on_the_same_commit_is_deduplicated(state_repo):
    bead, branch = _dispatched(state_repo)
    worker_commit(state_repo, branch, {"a.txt": "a\n"})
    first = ok("done", bead)
    before = ref_of(state_repo)
    again = ok("done", bead)
    assert "already queued" in again and first.split()[1].rstrip(":") in again
    assert ref_of(state_repo) == before
    assert len(mrs()) == 1


def test_a_newer_done_supersedes_the_older_mr(state_repo):
    bead, branch = _dispatched(state_repo)
    worker_commit(state_repo, branch, {"a.txt": "a\n"})
    ok("done", bead)
    [old] = mrs().values()
    tip = worker_commit(state_repo, branch, {"a.txt": "b\n"}, "more")
    out = ok("done", bead)
    assert f"superseded {old.id}" in out
    by_status = {m.status: m for m in mrs().values()}
    assert set(by_status) == {"superseded", "queued"}
    assert by_status["superseded"].id == old.id
    assert by_status["superseded"].reason == f"superseded by {by_status['queued'].id}"
    assert by_status["queued"].commit == tip
    assert bead_json(bead)["mr"] == by_status["queued"].id


def test_done_outside_a_work_branch_is_refused(state_repo):
    add_rig()
    new_task("x")
    before = ref_of(state_repo)
    res = convoy("done")
    assert res.code == 1
    assert res.err.strip() == (
        "error: not on a work branch (on branch main): run 'git convoy done' on a bead's "
        "branch (convoy/<bead-id>) or name the bead: git convoy done <bead>"
    )
    assert ref_of(state_repo) == before


def test_done_without_new_commits_is_refused(state_repo):
    bead, branch = _dispatched(state_repo)
    before = ref_of(state_repo)
    res = convoy("done", bead)
    assert res.code == 1
    assert res.err.strip() == (
        f"error: nothing to land: {branch} has no commits that main lacks (commit your work "
        "first)"
    )
    assert ref_of(state_repo) == before


def test_done_warns_when_far_behind_and_refuses_when_very_far(state_repo):
    bead, branch = _dispatched(state_repo)
    worker_commit(state_repo, branch, {"a.txt": "a\n"})
    for n in range(3):
        (state_repo / f"m{n}").write_text(str(n))
        git("add", f"m{n}", cwd=state_repo)
        git("commit", "-q", "-m", f"main {n}", cwd=state_repo)
    git("config", "convoy.done.refuseBehind", "3", cwd=state_repo)
    before = ref_of(state_repo)
    res = convoy("done", bead)
    assert res.code == 1
    assert "is 3 commits behind main (limit convoy.done.refuseBehind = 3)" in res.err
    assert ref_of(state_repo) == before
    git("config", "convoy.done.refuseBehind", "10", cwd=state_repo)
    git("config", "convoy.done.warnBehind", "2", cwd=state_repo)
    res = convoy("done", bead)
    assert res.code == 0
    assert res.err.strip() == (
        f"warning: {branch} is 3 commits behind main: conflicts are likelier; consider "
        "'git merge main' first"
    )


def test_target_precedence(state_repo):
    """--target > the nearest ancestor epic's integration branch > the rig's target."""
    add_rig()
    git("branch", "integration/e", cwd=state_repo)
    git("branch", "release", cwd=state_repo)
    epic = ok("bead", "create", "--type", "epic", "Epic")
    from gitconvoy.state.model import touched
    from gitconvoy.state.store import Store

    Store.open().transact(
        lambda tx: tx.put(touched(tx.bead(epic), integration_branch="integration/e")), "ib"
    )
    child = new_task("child", "--parent", epic)
    loose = new_task("loose")
    for bead in (child, loose):
        hand_dispatch(state_repo, bead)
        worker_commit(state_repo, f"convoy/{bead}", {f"{bead}.txt": "x\n"})
    ok("done", child)
    ok("done", loose)
    targets = {m.bead: m.target for m in mrs().values()}
    assert targets == {child: "integration/e", loose: "main"}
    ok("done", loose, "--target", "release")
    queued = [m for m in mrs().values() if m.bead == loose and m.status == "queued"]
    assert [m.target for m in queued] == ["release"]


def test_done_for_an_epic_or_closed_bead_is_refused(state_repo):
    add_rig()
    epic = ok("bead", "create", "--type", "epic", "E")
    res = convoy("done", epic)
    assert res.code == 1 and "epics land with 'git convoy integration land'" in res.err
    closed = new_task("c")
    ok("bead", "close", closed)
    res = convoy("done", closed)
    assert res.code == 1 and f"bead '{closed}' is already closed" in res.err


def test_done_json(state_repo):
    import json

    bead, branch = _dispatched(state_repo)
    tip = worker_commit(state_repo, branch, {"j.txt": "j\n"})
    data = json.loads(ok("done", bead, "--json"))
    assert (data["bead"], data["commit"], data["status"], data["new"]) == \
        (bead, tip, "queued", True)
    assert data["merged_as"] is None and data["superseded"] == []
