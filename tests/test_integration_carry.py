"""Integration branches carry their blockers (issue 11): a task is never dispatched from a
base that lacks the landed work of what it waited for.

Seen before: `## API (after: Data model)` with integration branches — Data model landed on
main through `integration land`, then the API task was dispatched from `integration/…-api`,
cut from main before that landing: the worker's tree lacked the code it waited for.
"""

from __future__ import annotations

import json
import subprocess

from conftest import convoy, git, is_ancestor, ok, ref_of
from test_refinery_helpers import add_rig, bead_json, worker_commit


def epic(title: str, *extra: str) -> str:
    return ok("bead", "create", "--type", "epic", title, *extra)


def task(title: str, parent: str, *extra: str) -> str:
    return ok("bead", "create", title, "--parent", parent, *extra)


def branch_of(epic_id: str) -> str:
    return bead_json(epic_id)["integration_branch"]


def work(repo, bead_id: str, files: dict[str, str]) -> None:
    """The dispatched worker: commit on the bead's branch in its own worktree, then done."""
    assert bead_json(bead_id)["status"] == "hooked", bead_json(bead_id)
    worker_commit(repo, f"convoy/{bead_id}", files, message=f"work of {bead_id}")
    ok("done", bead_id)
    ok("refinery", "run")
    assert bead_json(bead_id)["status"] == "closed", bead_json(bead_id)


def has_file(repo, commit: str, path: str) -> bool:
    return git("cat-file", "-t", f"{commit}:{path}", cwd=repo, check=False) == "blob"


def dispatched_base(bead_id: str) -> str:
    bead = bead_json(bead_id)
    assert bead["status"] == "hooked", bead
    return bead["base_commit"]


def test_a_sub_epic_after_another_starts_from_its_landed_work(state_repo):
    add_rig(capacity=5)
    data, api = epic("Data model"), epic("API")
    d1, a1 = task("Tables", data), task("Endpoints", api)
    ok("dep", "add", api, data)
    ok("integration", "create", data)
    ok("integration", "create", api)  # cut from main before Data model lands
    ok("create", "Service", data, d1, api, a1)
    ok("feed")
    work(state_repo, d1, {"model.py": "TABLES = 1\n"})
    out = ok("integration", "land", data)
    landed = bead_json(data)["dispatch"]["landed_as"]
    assert git("rev-parse", "main", cwd=state_repo) == landed, out
    base = dispatched_base(a1)
    assert has_file(state_repo, base, "model.py"), out
    assert is_ancestor(state_repo, landed, base)
    assert git("rev-parse", branch_of(api), cwd=state_repo) == base
    assert f"{branch_of(api)}: brought up to date with main" in out, out


def test_a_task_after_a_task_of_another_epic_waits_until_that_work_reaches_its_base(
        state_repo):
    add_rig(capacity=5)
    data, api = epic("Data model"), epic("API")
    d1 = task("Tables", data)
    a1 = task("Endpoints", api, "--dep", d1)
    ok("integration", "create", data)
    ok("integration", "create", api)
    ok("create", "Service", data, d1, api, a1)
    ok("feed")
    work(state_repo, d1, {"model.py": "TABLES = 1\n"})  # on integration/data, not main
    out = ok("feed")
    assert bead_json(a1)["status"] == "open", out
    assert f"{a1}: waits: {branch_of(api)} lacks the landed work of {d1}" in out, out
    assert "main lacks the landed work of" in out, out
    out = ok("integration", "land", data)
    base = dispatched_base(a1)
    assert has_file(state_repo, base, "model.py"), out


def test_a_nested_sub_epic_catches_up_through_its_parents(state_repo):
    """root → (first, second → inner); second waits for first. first lands on the root's
    branch; inner's task must start from it: second's branch catches up with the root's,
    then inner's with second's."""
    add_rig(capacity=5)
    root = epic("Root")
    first, second = epic("First", "--parent", root), epic("Second", "--parent", root)
    inner = epic("Inner", "--parent", second)
    f1, i1 = task("Make base", first), task("Use base", inner)
    ok("dep", "add", second, first)
    for e in (root, first, second, inner):
        ok("integration", "create", e)
    assert bead_json(inner)["target"] == branch_of(second)
    ok("create", "Nested", root, first, second, inner, f1, i1)
    ok("feed")
    work(state_repo, f1, {"base.py": "BASE = 1\n"})
    out = ok("integration", "land", first)  # onto the root's branch
    base = dispatched_base(i1)
    assert has_file(state_repo, base, "base.py"), out
    for e in (second, inner):
        assert has_file(state_repo, branch_of(e), "base.py"), (e, out)
    assert not has_file(state_repo, "main", "base.py")  # nothing leaked past the root


def test_a_catch_up_that_conflicts_gates_the_epic_until_a_worker_lands_the_merge(
        state_repo):
    add_rig(capacity=5)
    data, api = epic("Data model"), epic("API")
    d1, a1 = task("Tables", data), task("Endpoints", api)
    ok("dep", "add", api, data)
    ok("integration", "create", data)
    ok("integration", "create", api)
    api_branch = branch_of(api)
    worker_commit(state_repo, api_branch, {"shared.ini": "owner = api\n"})  # earlier work
    cid = ok("create", "Service", data, d1, api, a1)
    ok("feed")
    work(state_repo, d1, {"shared.ini": "owner = data\n"})
    out = ok("integration", "land", data)
    assert f"{api_branch}: merging main in: conflicts in shared.ini" in out, out
    assert bead_json(a1)["status"] == "open"
    tracked = json.loads(ok("status", cid, "--json"))["tracks"]
    [gate] = [b for b in tracked if b not in (data, d1, api, a1)]
    assert bead_json(gate)["target"] == api_branch and "conflict" in bead_json(gate)["labels"]
    assert bead_json(gate)["status"] == "hooked"  # dispatched like any task
    wt = state_repo.parent / f"wt-convoy-{gate}"
    worker_commit(state_repo, f"convoy/{gate}", {"note.txt": "x\n"})  # makes the worktree
    git("merge", "-q", "main", cwd=wt, check=False)
    (wt / "shared.ini").write_text("owner = both\n")
    git("add", "shared.ini", cwd=wt)
    git("commit", "-q", "--no-edit", cwd=wt)
    ok("done", gate)
    out = ok("refinery", "run")
    base = dispatched_base(a1)
    assert git("show", f"{base}:shared.ini", cwd=state_repo) == "owner = both", out
    assert has_file(state_repo, base, "model.py") is False  # d1 wrote only shared.ini


# --- plans that can never finish ------------------------------------------------------------

def test_epics_that_wait_on_each_others_work_are_refused_at_stage(state_repo):
    """Seen under load (bench_load, 200 tasks, random deps on earlier tasks across two
    epics): a task of ep1 after a task of ep2 and a task of ep2 after one of ep1 — each
    epic's work reaches the other only when it lands whole, so neither ever lands; the
    convoy stalled with every line saying 'waits'. Stage now says so before launch."""
    add_rig(capacity=5)
    root = epic("Root")
    one, two = epic("One", "--parent", root), epic("Two", "--parent", root)
    a = task("A", one)
    b = task("B", two)
    c = task("C", one, "--dep", b)
    d = task("D", two, "--dep", a)
    ok("integration", "create", one)
    ok("integration", "create", two)
    before = ref_of(state_repo)
    res = convoy("stage", root)
    assert res.code == 1, res.out
    assert ref_of(state_repo) == before  # nothing staged
    said = res.out + res.err
    assert f"{c} can never start: it needs the work of {b}" in said or \
        f"{d} can never start: it needs the work of {a}" in said, said
    # one way round is fine: Two waits for One to land, One never waits for Two
    ok("dep", "remove", c, b)
    ok("stage", root)


def test_a_task_on_main_between_two_tasks_of_an_epic_is_refused_too(state_repo):
    add_rig(capacity=5)
    root = epic("Root")
    one, two = epic("One", "--parent", root), epic("Two", "--parent", root)
    a = task("A", one)
    task("B", two, "--dep", a)
    plain = task("Plain", root, "--dep", a)  # on main: waits for One to land
    task("After plain", one, "--dep", plain)  # … and One waits for it: a deadlock
    ok("integration", "create", one)
    ok("integration", "create", two)
    res = convoy("stage", root)
    assert res.code == 1 and "can never start" in res.out + res.err


def test_a_refinery_run_says_an_epic_is_ready_to_land_once(state_repo):
    """Issue 14: "feed: epic …: every child is in integration/…" was printed twice (each
    landing's feed said it again)."""
    add_rig(capacity=5)
    one = epic("One")
    a, b = task("A", one), task("B", one)
    ok("integration", "create", one)
    ok("create", "Both", one, a, b)
    ok("feed")
    for bead_id in (a, b):
        worker_commit(state_repo, f"convoy/{bead_id}", {f"{bead_id}.txt": "x\n"},
                      message=f"work of {bead_id}")
        ok("done", bead_id)
    out = ok("refinery", "run")
    assert out.count("every child is in") == 1, out


def test_one_git_command_says_an_epic_is_ready_to_land_once(state_repo):
    """`git merge` fires two hooks (reference-transaction, then post-merge); each fed and
    each said "epic …: every child is in …" — the line issue 14 saw twice."""
    add_rig(capacity=5)
    one = epic("One")
    a = task("A", one)
    ok("integration", "create", one)
    ok("create", "Just one", one, a)
    ok("feed")
    ok("hooks", "install")
    worker_commit(state_repo, f"convoy/{a}", {"a.txt": "x\n"}, message="work of A")
    branch = branch_of(one)
    git("switch", "-q", branch, cwd=state_repo)
    proc = subprocess.run(["git", "merge", "--no-ff", "--no-edit", f"convoy/{a}"],
                          cwd=state_repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert said.count("every child is in") == 1, said
