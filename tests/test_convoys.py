"""Convoys end to end on real repositories: workflows A and C, the staged target, and the
errors users hit. Landing is done by `git merge` on main followed by `git convoy feed`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import convoy, git, git_convoy, ok, ref_of

WORKER = """#!/bin/sh
set -e
wt="$(git rev-parse --git-common-dir)/../../wt-$CONVOY_BEAD"
git worktree add -q "$wt" "$CONVOY_BRANCH"
cd "$wt"
echo "$CONVOY_TITLE" > "$CONVOY_BEAD.txt"
git add . && git commit -q -m "work on $CONVOY_BEAD"
echo "$CONVOY_BEAD $CONVOY_TARGET $CONVOY_RIG" >> "$(dirname "$0")/dispatched.log"
"""


@pytest.fixture
def rig_repo(state_repo: Path) -> Path:
    """A repository with rig `app` (capacity 3) whose dispatch commits on the work branch."""
    script = state_repo.parent / "worker.sh"
    script.write_text(WORKER)
    script.chmod(0o755)
    ok("rig", "add", "app", "--target", "main", "--capacity", "3")
    git("config", "convoy.rig.app.dispatch", str(script), cwd=state_repo)
    return state_repo


def dispatched(repo: Path) -> list[str]:
    log = repo.parent / "dispatched.log"
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def status_of(bead_id: str) -> str:
    return json.loads(ok("bead", "show", bead_id, "--json"))["status"]


def land(*bead_ids: str) -> None:
    for bead_id in bead_ids:
        git("merge", "-q", "--no-edit", f"convoy/{bead_id}")


def only_convoy() -> dict:
    convoys = json.loads(ok("list", "--all", "--json"))
    assert len(convoys) == 1
    return convoys[0]


def test_workflow_a_batch_sling_respects_deps(rig_repo):
    t1 = ok("bead", "create", "Fix auth timeout")
    t2 = ok("bead", "create", "Add validation")
    t3 = ok("bead", "create", "Integration tests")
    ok("dep", "add", t2, t1, "--type", "blocks")
    ok("sling", t1, t2, t3, "--rig", "app")
    assert sorted(dispatched(rig_repo)) == sorted([t1, t3])
    assert only_convoy()["tracks"] == sorted([t1, t2, t3])
    ok("feed")
    assert sorted(dispatched(rig_repo)) == sorted([t1, t3])  # nothing handed out twice
    land(t1)
    out = ok("feed")
    assert f"{t1}: landed in" in out
    assert dispatched(rig_repo)[-1] == t2
    # t2's branch starts from a main that contains t1's work
    assert git("merge-base", "--is-ancestor", f"convoy/{t1}", f"convoy/{t2}",
               cwd=rig_repo) == ""
    land(t2, t3)
    out = ok("feed")
    assert "landed: every tracked bead is closed" in out
    assert only_convoy()["status"] == "closed"
    assert "landed" not in ok("feed")  # the notice comes exactly once


def test_workflow_c_manual_convoy_parallel_within_capacity(rig_repo):
    ok("rig", "update", "app", "--capacity", "2")
    epic = ok("bead", "create", "--type", "epic", "Auth overhaul")
    t = [ok("bead", "create", f"task {i}", "--parent", epic) for i in range(1, 6)]
    ok("dep", "add", t[1], t[0])
    ok("dep", "add", t[2], t[0])
    ok("dep", "add", t[3], t[1])
    ok("dep", "add", t[3], t[2])
    cid = ok("create", "Auth overhaul", epic, *t)
    ok("sling", t[0])
    assert dispatched(rig_repo) == [t[0]]
    max_in_flight = 0
    for _ in range(12):
        ok("feed")
        flying = [b for b in t if status_of(b) in ("hooked", "in_progress")]
        max_in_flight = max(max_in_flight, len(flying))
        assert len(flying) <= 2
        if not flying:
            break
        land(*flying[:1])
    assert max_in_flight == 2
    assert epic not in dispatched(rig_repo)
    assert sorted(dispatched(rig_repo)) == sorted(t)
    order = dispatched(rig_repo)
    assert order.index(t[3]) > max(order.index(t[1]), order.index(t[2]))
    assert json.loads(ok("status", cid, "--json"))["status"] == "closed"
    assert status_of(epic) == "closed"


def _staged_tree() -> tuple[str, str, str, list[str], list[str]]:
    root = ok("bead", "create", "--type", "epic", "Auth overhaul")
    a = ok("bead", "create", "--type", "epic", "Part A", "--parent", root)
    b = ok("bead", "create", "--type", "epic", "Part B", "--parent", root)
    ok("dep", "add", b, a)
    ta = [ok("bead", "create", f"a{i}", "--parent", a, "-p", "1") for i in range(3)]
    tb = [ok("bead", "create", f"b{i}", "--parent", b) for i in range(3)]
    ok("dep", "add", ta[1], ta[0])
    return root, a, b, ta, tb


def test_staged_target_stage_launch_feed_to_the_end(rig_repo):
    root, a, b, ta, tb = _staged_tree()
    before = ref_of(rig_repo)
    res = convoy("stage", root, "--json")
    assert res.code == 0, res.err
    plan = json.loads(res.out)
    assert plan["waves"] == [sorted([ta[0], ta[2]]), [ta[1]], sorted(tb)]
    codes = [w["code"] for w in plan["warnings"]]
    assert codes.count("missing-branch") == 2
    assert plan["status"] == "staged_warnings"
    assert ref_of(rig_repo) != before
    text = ok("stage", root)  # re-stage: same convoy, text view
    assert text.index("Tree") < text.index("Waves") < text.index("Warnings")
    cid = plan["convoy"]
    assert len(json.loads(ok("list", "--json"))) == 1
    assert convoy("launch", cid).code == 1  # staged_warnings needs --force
    ok("launch", cid, "--force")
    assert sorted(dispatched(rig_repo)) == sorted([ta[0], ta[2]])
    assert status_of(a) == "in_progress"  # launch's feed rolled the dispatch up to A
    assert status_of(root) == "in_progress" and status_of(b) == "open"
    for _ in range(10):
        flying = [x for x in ta + tb if status_of(x) in ("hooked", "in_progress")]
        if not flying:
            break
        land(*flying)
        ok("feed")
    assert status_of(a) == "closed" and status_of(b) == "closed"
    assert status_of(root) == "closed"
    order = dispatched(rig_repo)
    assert max(order.index(x) for x in ta) < min(order.index(x) for x in tb)
    assert json.loads(ok("status", cid, "--json"))["status"] == "closed"


def test_stage_errors_write_nothing(rig_repo):
    t1 = ok("bead", "create", "one")
    epic = ok("bead", "create", "--type", "epic", "E")
    before = ref_of(rig_repo)
    for args, code in [
        (("stage", "nope-123"), "unknown-id"),
        (("stage", t1, epic), "mixed-input"),
    ]:
        res = convoy(*args)
        assert res.code == 1
        assert res.err.startswith(f"error: {code}:"), res.err
        assert len(res.err.strip().splitlines()) == 1
        assert ref_of(rig_repo) == before


def test_stage_without_rig_is_no_target(state_repo):
    t1 = ok("bead", "create", "one")
    before = ref_of(state_repo)
    res = convoy("stage", t1)
    assert res.code == 1 and res.err.startswith("error: no-target:")
    assert ref_of(state_repo) == before


def test_launch_errors(rig_repo):
    t1 = ok("bead", "create", "one")
    cid = json.loads(ok("stage", t1, "--json"))["convoy"]
    ok("launch", cid)
    before = ref_of(rig_repo)
    res = convoy("launch", cid)
    assert (res.code, res.err.strip()) == (1, f"error: convoy {cid} is already open")
    ok("close", cid, "--force")
    res = convoy("launch", cid)
    assert res.code == 1 and "is closed" in res.err
    assert convoy("launch", "convoy-zzzz").code == 1
    assert ref_of(rig_repo) != before  # only the close moved it


def test_launch_with_parked_rig_changes_nothing(rig_repo):
    t1 = ok("bead", "create", "one", "--rig", "app")
    cid = json.loads(ok("stage", t1, "--json"))["convoy"]
    ok("rig", "park", "app")
    before = ref_of(rig_repo)
    res = convoy("launch", cid)
    assert res.code == 1 and "parked" in res.err
    assert ref_of(rig_repo) == before
    assert json.loads(ok("status", cid, "--json"))["status"] == "staged_ready"


def test_sling_errors(rig_repo):
    t1 = ok("bead", "create", "one")
    epic = ok("bead", "create", "--type", "epic", "E")
    before = ref_of(rig_repo)
    for args, text in [
        (("sling", t1, "--rig", "ghost"), "unknown rig 'ghost'"),
        (("sling", epic, t1), "is an epic: sling it alone"),  # alone: it goes to a coordinator
        (("sling", "nope-1"), "unknown bead 'nope-1'"),
    ]:
        res = convoy(*args)
        assert res.code == 1 and text in res.err, res.err
        assert ref_of(rig_repo) == before
    ok("rig", "park", "app")
    res = convoy("sling", t1, "--rig", "app")
    assert res.code == 1 and "parked" in res.err
    assert ref_of(rig_repo) != before  # only the park moved it


@pytest.mark.parametrize("command,reason", [
    ("exit 3", "dispatch command exited 3"),
    ("/nonexistent/worker.sh", "dispatch command not found"),
])
def test_failing_dispatch_rolls_back_and_the_rest_continue(rig_repo, command, reason):
    t1 = ok("bead", "create", "one", "-p", "0")
    t2 = ok("bead", "create", "two")
    git("config", "convoy.rig.app.dispatch", command, cwd=rig_repo)
    res = convoy("sling", t1, t2, "--rig", "app")
    assert res.code == 1
    shown = json.loads(ok("bead", "show", t1, "--json"))
    assert shown["status"] == "open"
    assert reason in shown["dispatch"]["last_error"]
    assert shown["dispatch"]["attempts"] == 1
    assert json.loads(ok("bead", "show", t2, "--json"))["dispatch"]["attempts"] == 1
    assert git("branch", "--list", f"convoy/{t1}", cwd=rig_repo) == ""


def test_two_feeders_at_once_dispatch_each_bead_once(rig_repo):
    beads = [ok("bead", "create", f"t{i}") for i in range(3)]
    cid = ok("create", "batch", *beads)
    assert cid
    procs = [subprocess.Popen(["git", "convoy", "feed"], cwd=rig_repo,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    assert sorted(dispatched(rig_repo)) == sorted(beads)


def test_squash_merge_with_trailer_lands(rig_repo):
    t1 = ok("bead", "create", "one")
    ok("sling", t1, "--rig", "app")
    git("merge", "--squash", f"convoy/{t1}", cwd=rig_repo)
    git("commit", "-q", "-m", f"squashed\n\nConvoy-Bead: {t1}", cwd=rig_repo)
    assert f"{t1}: landed in" in ok("feed")
    assert status_of(t1) == "closed"


def test_fresh_branch_without_work_never_counts_as_landed(state_repo):
    ok("rig", "add", "app", "--target", "main")
    t1 = ok("bead", "create", "one")
    ok("sling", t1)  # default dispatch: the branch only
    assert git("rev-parse", f"convoy/{t1}") == git("rev-parse", "main")
    ok("feed")
    assert status_of(t1) == "hooked"


def test_end_to_end_through_git_convoy_entry_point(rig_repo):
    t1 = git_convoy("bead", "create", "one", cwd=rig_repo).stdout.strip()
    t2 = git_convoy("bead", "create", "two", "--dep", t1, cwd=rig_repo).stdout.strip()
    git_convoy("sling", t1, t2, cwd=rig_repo)
    git("merge", "-q", "--no-edit", f"convoy/{t1}", cwd=rig_repo)
    out = git_convoy("feed", cwd=rig_repo).stdout
    assert f"✓ {t2}" in out


def test_capacity_is_shared_across_convoys(rig_repo):
    ok("rig", "update", "app", "--capacity", "2")
    first = [ok("bead", "create", f"a{i}") for i in range(2)]
    second = [ok("bead", "create", f"b{i}") for i in range(2)]
    ok("create", "first", *first)
    ok("create", "second", *second)
    ok("feed")
    ok("feed")
    flying = [b for b in first + second if status_of(b) in ("hooked", "in_progress")]
    assert len(flying) == 2
    land(*flying)
    ok("feed")
    assert sorted(dispatched(rig_repo)) == sorted(first + second)


def test_launch_of_staged_warnings_without_force_writes_nothing(rig_repo):
    a = ok("bead", "create", "a")
    b = ok("bead", "create", "b")  # two unrelated beads: orphan warnings
    cid = json.loads(ok("stage", a, b, "--json"))["convoy"]
    before = ref_of(rig_repo)
    res = convoy("launch", cid)
    assert res.code == 1
    assert res.err.strip().startswith(f"error: convoy {cid} was staged with 2 warning(s)")
    assert ref_of(rig_repo) == before
    assert dispatched(rig_repo) == []


def test_stage_refuses_beads_of_an_open_convoy(rig_repo):
    a = ok("bead", "create", "a")
    cid = ok("create", "running", a)
    before = ref_of(rig_repo)
    res = convoy("stage", a)
    assert res.code == 1
    assert f"overlap: open convoy {cid} already tracks {a}" in res.err
    assert ref_of(rig_repo) == before


def test_a_dispatch_interrupted_before_its_branch_existed_is_handed_out_again(state_repo):
    ok("rig", "add", "app", "--target", "main")
    t1 = ok("bead", "create", "one")
    ok("sling", t1)  # claimed, branch made (default dispatch: no command)
    # the state a crash between the claim and the branch leaves behind
    git("branch", "-D", f"convoy/{t1}", cwd=state_repo)
    ok("feed")
    assert status_of(t1) == "hooked"  # within the grace period a dispatch may be in flight
    git("config", "convoy.dispatchGrace", "0", cwd=state_repo)
    id_file = state_repo / ".git" / "convoy" / "id"
    mine = id_file.read_text()
    id_file.write_text("another-clone\n")  # a claim held elsewhere is never touched
    ok("feed")
    assert status_of(t1) == "hooked"
    id_file.write_text(mine)
    out = ok("feed")
    assert f"{t1}: dispatch was interrupted; back to open" in out
    assert f"✓ {t1}" in out
    assert git("rev-parse", f"convoy/{t1}", cwd=state_repo) == git("rev-parse", "main",
                                                                   cwd=state_repo)
    shown = json.loads(ok("bead", "show", t1, "--json"))
    assert shown["status"] == "hooked" and shown["dispatch"]["attempts"] == 2


# --- the feeder's report: what `git convoy feed` says, in text and in --json ------------------


def feed_json(repo: Path) -> dict:
    return json.loads(git_convoy("feed", "--json", cwd=repo).stdout)


def feed_lines(repo: Path) -> list[str]:
    return git_convoy("feed", cwd=repo).stdout.splitlines()


def test_the_feeder_reports_dispatches_landings_and_a_stranded_convoy(rig_repo):
    """Convoy X: epic E with t1, and t2 blocked by t1. Convoy Y: t3, blocked by t0, which no
    convoy tracks and nobody works on, so Y is stranded until t0 closes. A blocked bead is
    never offered for dispatch: no "✗ … not dispatched" line, ever."""
    cv = lambda *args: git_convoy(*args, cwd=rig_repo).stdout.strip()  # noqa: E731
    epic = cv("bead", "create", "--type", "epic", "Search")
    t1 = cv("bead", "create", "Index the docs", "--parent", epic)
    t2 = cv("bead", "create", "Query the index", "--parent", epic, "--dep", t1)
    t0 = cv("bead", "create", "Decide the ranking")
    t3 = cv("bead", "create", "Rank results", "--dep", t0)
    x = cv("create", "X", epic, t1, t2)
    y = cv("create", "Y", t3)
    stranded = f"convoy {y} is stranded: work left, nothing in flight, nothing ready"

    assert feed_json(rig_repo) == {
        "landed": [], "started": [], "epics": [{"id": epic, "status": "in_progress"}],
        "dispatched": [{"bead": t1, "ok": True,
                        "detail": f"dispatched on convoy/{t1} (rig app)"}],
        "closed_convoys": [], "stranded": [y], "waiting": [], "unpushed": [], "repushed": [],
        "behind": [], "caught_up": [], "fallbacks": [], "strategy_deferred": [],
    }
    # t1's worker committed on its branch; t2 waits for t1 and t3 for t0: nothing to hand out
    assert feed_lines(rig_repo) == [f"{t1}: work started", stranded]
    assert feed_lines(rig_repo) == [stranded]  # said again while it stays stranded

    land(t1)
    assert feed_json(rig_repo) == {
        "landed": [{"id": t1, "sha": git("rev-parse", "main", cwd=rig_repo)}],
        "started": [], "epics": [],
        "dispatched": [{"bead": t2, "ok": True,
                        "detail": f"dispatched on convoy/{t2} (rig app)"}],
        "closed_convoys": [], "stranded": [y], "waiting": [], "unpushed": [], "repushed": [],
        "behind": [], "caught_up": [], "fallbacks": [], "strategy_deferred": [],
    }
    land(t2)
    main = git("rev-parse", "main", cwd=rig_repo)
    assert feed_lines(rig_repo) == [
        f"{t2}: landed in {main[:10]}",
        f"epic {epic}: closed",
        f"convoy {x} landed: every tracked bead is closed",
        stranded,
    ]
    assert dispatched(rig_repo) == [t1, t2]

    cv("bead", "close", t0, "--reason", "decided: BM25")
    assert feed_json(rig_repo) == {
        "landed": [], "started": [], "epics": [],
        "dispatched": [{"bead": t3, "ok": True,
                        "detail": f"dispatched on convoy/{t3} (rig app)"}],
        "closed_convoys": [], "stranded": [], "waiting": [], "unpushed": [], "repushed": [],
        "behind": [], "caught_up": [], "fallbacks": [], "strategy_deferred": [],
    }
    assert feed_lines(rig_repo) == [f"{t3}: work started"]
    assert feed_lines(rig_repo) == []  # nothing new: the step is idempotent and says nothing
    assert dispatched(rig_repo) == [t1, t2, t3]


def test_a_convoy_blocked_only_from_outside_is_stranded_not_dispatched(rig_repo):
    """Every tracked bead waits on an open bead outside the convoy: the feeder reports the
    convoy stranded and tries no dispatch (which would only fail on the blocker)."""
    cv = lambda *args: git_convoy(*args, cwd=rig_repo).stdout.strip()  # noqa: E731
    outside = cv("bead", "create", "Outside blocker")
    waiting = [cv("bead", "create", f"waits {i}", "--dep", outside) for i in range(2)]
    cid = cv("create", "Waiting", *waiting)
    before = ref_of(rig_repo)
    out = feed_lines(rig_repo)
    assert out == [f"convoy {cid} is stranded: work left, nothing in flight, nothing ready"]
    assert not [line for line in out if line.startswith("✗")]
    assert feed_json(rig_repo) == {"landed": [], "started": [], "epics": [], "dispatched": [],
                                   "closed_convoys": [], "stranded": [cid], "waiting": [],
                                   "unpushed": [], "repushed": [], "behind": [],
                                   "caught_up": [], "fallbacks": [],
                                   "strategy_deferred": []}
    assert ref_of(rig_repo) == before  # a stranded convoy is reported, nothing is written
    assert [status_of(b) for b in waiting] == ["open", "open"]
    assert dispatched(rig_repo) == []
