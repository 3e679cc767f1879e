"""The review gate of integration branches (workflow Target, DESIGN §8): with the gate on, an
epic whose tasks are all in its integration branch is reviewed by itself; approve lands it,
reject files a fix task that lands in the branch and gets a new review. Real repos, real git,
the refinery doing the landing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import convoy, git, ok, ref_of, workdir_state
from test_refinery_helpers import add_rig, bead_json, hand_dispatch, set_check, worker_commit

from gitconvoy.state.store import Store

pytestmark = pytest.mark.slow


def reviews(epic: str) -> list[dict]:
    snap = Store.open().snapshot()
    found = [r.to_dict() for r in snap.objects["reviews"].values() if r.epic == epic]
    return sorted(found, key=lambda r: (r.get("created_at", ""), r["id"]))


def gated_epic(repo: Path, title: str = "Auth overhaul") -> tuple[str, str]:
    add_rig()
    git("config", "convoy.review", "true", cwd=repo)
    epic = ok("bead", "create", "--type", "epic", title)
    ok("integration", "create", epic)
    return epic, bead_json(epic)["integration_branch"]


def work(repo: Path, bead: str, files: dict[str, str]) -> str:
    """A worker commits on the bead's dispatched branch and runs `done`."""
    shown = bead_json(bead)
    assert shown["status"] == "hooked", shown
    sha = worker_commit(repo, shown["branch"], files, f"{bead}: work")
    assert "queued mr-" in ok("done", bead)
    return sha


def test_target_workflow_review_reject_fix_approve_land(state_repo):
    repo = state_repo
    epic, branch = gated_epic(repo)
    set_check(repo, "test -e a.py\n")
    t1 = ok("bead", "create", "Part A", "--parent", epic)
    t2 = ok("bead", "create", "Part B", "--parent", epic)
    ok("create", "Auth", epic, t1, t2)
    git("checkout", "-q", "-b", "mine", cwd=repo)
    user = workdir_state(repo)
    main = git("rev-parse", "main", cwd=repo)
    out = ok("feed")
    assert {bead_json(t)["target"] for t in (t1, t2)} == {branch}, out
    work(repo, t1, {"a.py": "A = 1\n", "tests/test_a.py": "from a import A\n"})
    work(repo, t2, {"b.txt": "b\n"})
    out = ok("refinery", "run")
    # both tasks landed in the integration branch; the review started by itself
    tip = git("rev-parse", branch, cwd=repo)
    [first] = reviews(epic)
    assert first["status"] == "pending" and first["tip"] == tip and first["findings"] == []
    assert f"review {first['id']} of {branch} started (0 finding(s))" in out
    assert "a.py" in first["diffstat"] and "b.txt" in first["diffstat"]
    assert "review:pending" in bead_json(epic)["labels"]
    assert git("rev-parse", "main", cwd=repo) == main
    res = convoy("integration", "land", epic)
    assert res.code == 1 and f"{branch} is not approved for {tip[:10]}" in res.err
    out = ok("feed")  # idempotent: a second feed starts nothing new
    assert "started" not in out and f"review {first['id']} pending" in out
    assert len(reviews(epic)) == 1
    # reject: a fix task under the epic is dispatched and keeps the epic from landing
    out = ok("review", "reject", epic, "--reason", "name the constant better")
    fix = bead_json(epic)  # labels moved to rejected
    assert "review:rejected" in fix["labels"]
    [rejected] = reviews(epic)
    fixer = rejected["fix_bead"]
    assert rejected["status"] == "rejected" and f"fix task {fixer}" in out
    shown = bead_json(fixer)
    assert shown["title"] == "Fix review findings: Auth overhaul"
    assert shown["parent"] == epic and "name the constant better" in shown["description"]
    assert shown["status"] == "hooked" and shown["target"] == branch
    res = convoy("review", "approve", epic)
    assert res.code == 1 and "has no pending review" in res.err
    work(repo, fixer, {"a.py": "ANSWER = 1\n", "tests/test_a.py": "from a import ANSWER\n"})
    out = ok("refinery", "run")
    new_tip = git("rev-parse", branch, cwd=repo)
    assert bead_json(fixer)["status"] == "closed"
    second = reviews(epic)[-1]
    assert second["tip"] == new_tip and second["status"] == "pending"
    assert git("rev-parse", "main", cwd=repo) == main
    # approve: the branch lands on main, the epic closes, the convoy closes
    out = ok("review", "approve", epic)
    assert f"approved {second['id']}" in out and f"landed {branch} on main" in out
    assert git("show", "main:a.py", cwd=repo) == "ANSWER = 1"
    assert git("show", "main:b.txt", cwd=repo) == "b"
    closed = bead_json(epic)
    assert closed["status"] == "closed" and "review:approved" in closed["labels"]
    [cv] = json.loads(ok("list", "--all", "--json"))
    assert cv["status"] == "closed"
    assert git("branch", "--list", branch, cwd=repo) == ""
    assert workdir_state(repo) == user


def _ready_epic(repo: Path, files: dict[str, str]) -> tuple[str, str]:
    """An epic whose only child is closed and whose branch holds `files` (committed
    directly on the integration branch, in its own worktree)."""
    epic, branch = gated_epic(repo, "Findings")
    child = ok("bead", "create", "child", "--parent", epic)
    worker_commit(repo, branch, files, "combined work")
    ok("bead", "close", child)
    return epic, branch


def test_findings_conflict_markers_and_untested_code(state_repo):
    epic, branch = _ready_epic(state_repo, {
        "notes.txt": "ok\n<<<<<<< ours\nA\n=======\nB\n>>>>>>> theirs\n",
        "src/app.py": "print('hi')\n",
    })
    out = ok("review", "run", epic)
    [review] = reviews(epic)
    findings = review["findings"]
    assert "conflict-markers: conflict marker at notes.txt:2" in findings
    assert "conflict-markers: conflict marker at notes.txt:4" in findings
    assert "conflict-markers: conflict marker at notes.txt:6" in findings
    assert any(f.startswith("tests: 1 code file(s) changed without a test change: src/app.py")
               for f in findings)
    assert f"findings: {len(findings)}" in out
    text = Path(review["report_path"]).read_text()
    assert "## Findings: 4" in text and "notes.txt" in text and "src/app.py" in text
    full = ok("review", "show", epic, "--report")
    assert "[FINDING] No conflict-marker residue" in full
    assert "[ok] Full diff of " in full


def test_check_command_failure_is_a_finding(state_repo):
    epic, _ = _ready_epic(state_repo, {"x.txt": "x\n"})
    set_check(state_repo, "echo broken; exit 4\n")
    ok("review", "run", epic)
    [review] = reviews(epic)
    assert any(f.startswith("check: check failed (exit 4); log: ") for f in review["findings"])


def _reviewer(repo: Path, script: str) -> None:
    path = repo.parent / "reviewer.sh"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    git("config", "convoy.review.command", str(path), cwd=repo)


def test_reviewer_command_approves_and_the_feed_lands(state_repo):
    repo = state_repo
    epic, branch = _ready_epic(repo, {"y.py": "Y = 2\n", "tests/test_y.py": "import y\n"})
    ok("create", "Findings convoy", epic)
    _reviewer(repo, 'grep -q "## Findings: 0" "$CONVOY_REVIEW_REPORT" && '
                    'test "$CONVOY_EPIC" = "' + epic + '"\n')
    out = ok("feed")
    assert "approved review rv-" in out and f"landed {branch} on main" in out
    assert reviews(epic)[-1]["decided_by"] == "reviewer command"
    assert bead_json(epic)["status"] == "closed"
    assert git("show", "main:y.py", cwd=repo) == "Y = 2"


def test_reviewer_command_rejects_and_the_fix_task_is_dispatched(state_repo):
    repo = state_repo
    epic, branch = _ready_epic(repo, {"z.py": "Z = 3\n"})
    ok("create", "Findings convoy", epic)
    _reviewer(repo, 'echo "no tests"; exit 1\n')
    main = git("rev-parse", "main", cwd=repo)
    out = ok("feed")
    [review] = reviews(epic)
    assert review["status"] == "rejected" and "reviewer command: check failed (exit 1)" in \
        review["reason"]
    fix = bead_json(review["fix_bead"])
    assert fix["status"] == "hooked" and fix["target"] == branch, out
    assert git("rev-parse", "main", cwd=repo) == main
    assert bead_json(epic)["status"] != "closed"


def test_a_new_tip_invalidates_an_approval(state_repo):
    repo = state_repo
    epic, branch = _ready_epic(repo, {"w.txt": "w\n"})
    ok("create", "Findings convoy", epic)
    ok("feed")
    first = reviews(epic)[-1]
    assert first["status"] == "pending"
    ok("review", "approve", epic, "--no-land")
    worker_commit(repo, branch, {"late.txt": "late\n"}, "late change")
    res = convoy("integration", "land", epic)
    assert res.code == 1 and "is not approved for" in res.err
    out = ok("feed")
    assert "started" in out
    old, new = reviews(epic)
    assert old["id"] == first["id"] and old["status"] == "superseded"
    assert new["status"] == "pending" and new["tip"] == git("rev-parse", branch, cwd=repo)


def test_gate_off_keeps_the_old_behaviour(state_repo):
    repo = state_repo
    epic, branch = _ready_epic(repo, {"v.txt": "v\n"})
    git("config", "convoy.review", "false", cwd=repo)
    ok("create", "Findings convoy", epic)
    out = ok("feed")
    assert f"land it with 'git convoy integration land {epic}'" in out
    assert reviews(epic) == []
    ok("integration", "land", epic)
    assert bead_json(epic)["status"] == "closed"


def test_gate_from_the_committed_project_config(state_repo):
    repo = state_repo
    (repo / ".convoy").mkdir()
    (repo / ".convoy" / "config.toml").write_text("[review]\nenabled = true\n")
    git("add", ".convoy/config.toml", cwd=repo)
    git("commit", "-q", "-m", "gate on", cwd=repo)
    epic, branch = _ready_epic(repo, {"u.txt": "u\n"})
    git("config", "--unset", "convoy.review", cwd=repo)
    ok("create", "Findings convoy", epic)
    assert "review rv-" in ok("feed")


def test_bad_input_is_one_line_and_writes_nothing(state_repo):
    repo = state_repo
    epic, _ = gated_epic(repo)
    before = ref_of(repo)
    for args, expected in (
        (("review", "approve", "t-nope"), "error: unknown bead 't-nope'"),
        (("review", "reject", "t-nope", "--reason", "x"), "error: unknown bead 't-nope'"),
        (("review", "approve", epic),
         f"error: epic '{epic}' has no pending review (it has no review)"),
        (("review", "reject", epic), f"error: epic '{epic}' has no pending review"),
        (("review", "show", epic), f"error: epic '{epic}' has no review yet"),
        (("review", "run", epic), f"error: epic '{epic}' is not ready for review"),
    ):
        res = convoy(*args)
        assert ref_of(repo) == before
        assert res.code == 1 and res.out == "", (args, res)
        assert res.err.startswith(expected) and res.err.count("\n") == 1, (args, res.err)
    task = ok("bead", "create", "plain")
    res = convoy("review", "approve", task)
    assert res.code == 1 and "is a task, not an epic" in res.err
    assert convoy("review", "approve").code == 2
    assert ref_of(repo) != before  # only the plain task's creation moved it
    mid = ref_of(repo)
    assert convoy("review", "reject", epic, "--reason", "x").code == 1
    assert ref_of(repo) == mid


def test_hand_dispatched_fix_in_progress_blocks_landing(state_repo):
    """While the fix task is open the epic cannot land, even by hand."""
    repo = state_repo
    epic, branch = _ready_epic(repo, {"q.txt": "q\n"})
    ok("review", "run", epic)
    ok("review", "reject", epic, "--reason", "more")
    fixer = reviews(epic)[-1]["fix_bead"]
    assert bead_json(fixer)["status"] == "open"  # no convoy: nothing dispatches it
    hand_dispatch(repo, fixer, target=branch)
    res = convoy("integration", "land", epic)
    assert res.code == 1 and "child bead(s) not closed" in res.err


def test_target_workflow_through_git_convoy_stage_and_launch(repo):
    """Through the installed `git convoy`: root epic → sub-epic with an integration branch
    (tasks A, B) and task C waiting for the sub-epic. The review starts by itself when A and
    B are in the branch; approval lands the sub-epic on main, which frees C; when C lands the
    root epic closes and so does the convoy."""
    from conftest import git_convoy

    def gc(*args: str, cwd: Path = repo) -> str:
        return git_convoy(*args, cwd=cwd).stdout.strip()

    gc("init", "--prefix", "tg")
    gc("rig", "add", "app", "--target", "main")
    git("config", "convoy.review", "true", cwd=repo)
    root = gc("bead", "create", "--type", "epic", "Root")
    sub = gc("bead", "create", "--type", "epic", "Sub", "--parent", root)
    gc("integration", "create", sub)
    branch = json.loads(gc("bead", "show", sub, "--json"))["integration_branch"]
    a = gc("bead", "create", "A", "--parent", sub)
    b = gc("bead", "create", "B", "--parent", sub)
    c = gc("bead", "create", "C", "--parent", root)
    gc("dep", "add", c, sub, "--type", "blocks")
    gc("stage", root)
    [staged] = json.loads(gc("list", "--all", "--json"))
    out = gc("launch", staged["id"])
    assert a in out and b in out

    def finish(bead: str, files: dict[str, str]) -> None:
        shown = json.loads(gc("bead", "show", bead, "--json"))
        assert shown["status"] == "hooked", shown
        wt = repo.parent / f"worker-{bead}"
        git("worktree", "add", "-q", str(wt), shown["branch"], cwd=repo)
        for name, text in files.items():
            (wt / name).parent.mkdir(parents=True, exist_ok=True)
            (wt / name).write_text(text)
            git("add", name, cwd=wt)
        git("commit", "-q", "-m", f"{bead}: work", cwd=wt)
        assert "queued mr-" in gc("done", cwd=wt)

    assert json.loads(gc("bead", "show", c, "--json"))["status"] == "open"
    finish(a, {"a.py": "A = 1\n", "tests/test_a.py": "import a\n"})
    finish(b, {"b.txt": "b\n"})
    out = gc("refinery", "run")
    assert f"review rv-{sub}-" in out and "started (0 finding(s))" in out
    assert gc("review", "show", sub).startswith(f"review rv-{sub}-")
    out = gc("review", "approve", sub)
    assert f"landed {branch} on main" in out
    assert git("show", "main:a.py", cwd=repo) == "A = 1"
    assert json.loads(gc("bead", "show", sub, "--json"))["status"] == "closed"
    finish(c, {"c.txt": "c\n"})
    gc("refinery", "run")
    assert json.loads(gc("bead", "show", root, "--json"))["status"] == "closed"
    [done] = json.loads(gc("list", "--all", "--json"))
    assert done["status"] == "closed"


def test_a_review_file_is_validated_like_any_state_file():
    from gitconvoy.errors import SchemaError
    from gitconvoy.state.model import Review

    good = {"id": "rv-e-1", "epic": "e", "branch": "integration/e", "base": "main",
            "tip": "a" * 40, "status": "pending", "findings": ["x"]}
    assert Review.from_dict(good, "reviews/rv-e-1.yaml").to_dict() == good
    for change, field in (({"status": "maybe"}, "status"), ({"tip": "abc"}, "tip"),
                          ({"findings": "x"}, "findings"), ({"colour": 1}, "colour")):
        with pytest.raises(SchemaError) as caught:
            Review.from_dict({**good, **change}, "reviews/rv-e-1.yaml")
        assert caught.value.message.startswith(f"reviews/rv-e-1.yaml: field '{field}'")


def test_approve_whose_landing_fails_exits_1_and_keeps_the_approval(state_repo):
    repo = state_repo
    epic, branch = _ready_epic(repo, {"k.txt": "k\n"})
    ok("review", "run", epic)
    set_check(repo, "exit 5\n")
    res = convoy("review", "approve", epic)
    assert res.code == 1 and res.err.count("\n") == 1
    assert "approved but did not land" in res.err and "check failed (exit 5)" in res.err
    review = reviews(epic)[-1]
    assert review["status"] == "approved" and review["note"].startswith("land failed")
    set_check(repo, "exit 0\n")
    ok("integration", "land", epic)
    assert bead_json(epic)["status"] == "closed"


def test_a_relative_reviewer_is_the_trusted_copy_not_the_one_under_review(state_repo):
    """The reviewer runs in a worktree of the branch under review, so `./review.sh` used to
    mean the script on that branch: a worker could commit `exit 0` there and approve its own
    epic. A relative program now means the file in the main worktree, like a dispatch
    command (decision 20); the code under review is still the current folder."""
    repo = state_repo
    (repo / "review.sh").write_text("#!/bin/sh\necho 'the trusted reviewer says no'; exit 1\n")
    (repo / "review.sh").chmod(0o755)
    epic, branch = _ready_epic(repo, {"review.sh": "#!/bin/sh\nexit 0\n", "x.py": "X = 1\n"})
    worktree = repo.parent / f"wt-{branch.replace('/', '-')}"  # the worker's: it approves
    git("update-index", "--chmod=+x", "review.sh", cwd=worktree)
    git("commit", "-q", "-m", "an approving reviewer", cwd=worktree)
    ok("create", "Findings convoy", epic)
    git("config", "convoy.review.command", "./review.sh", cwd=repo)
    main = git("rev-parse", "main", cwd=repo)
    ok("feed")
    [review] = reviews(epic)
    assert review["status"] == "rejected", review
    assert git("rev-parse", "main", cwd=repo) == main
