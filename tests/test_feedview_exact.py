"""A hook fed from the patched view decides exactly what a hook fed from the whole state
decides, whatever was written between two hooks (gitconvoy.flow.feedview, issue 12).

Hypothesis draws a small state and a sequence of writes: beads created (under epics, under
parents that do not exist, with deps of every type), deps added and dropped, statuses set by
hand (closed, tombstoned, put in flight), parents changed (loops included), targets and
integration branches named, convoys created, extended and closed (now and then of another
strategy), MRs recorded, work committed on a dispatched bead's branch and merged into its
target. After some of the writes a hook runs its feeder step. Before each hook the
repository is copied; the copy drops the view and feeds from the whole state, the original
feeds from the view it carries. Their report lines, state trees, branches and runtime files
must be equal, and the original must not have fallen back to a full load unless the state
asked for one (a convoy of another strategy) or it had no view yet.

Random states rarely line up the few beads one rule of the patch is about, so each rule
also has its story (the same two hooks, a handful of writes): each story fails when the
rule it names is taken out of gitconvoy.flow.feedview or gitconvoy.plan.feedreach.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import git, make_repo, ok
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from gitconvoy import hookrun
from gitconvoy.errors import ConvoyError
from gitconvoy.flow import feedview
from gitconvoy.plan.edits import with_status
from gitconvoy.state import model
from gitconvoy.state.model import Bead, Convoy, Dep, MergeRequest, touched
from gitconvoy.state.store import Store
from gitconvoy.state.tx import Tx

pytestmark = pytest.mark.slow

NOW = "2026-01-01T00:00:00.000000Z"
IDS = [f"t-{n}" for n in range(20)]  # some never exist: dangling parents and deps
CONVOYS = ["c-0", "c-1", "c-2"]
RUNTIME_FILES = ("watch", "inflight", "work-branches")
# Why a hook may feed from the whole state: it had no view yet, or a convoy asks for it.
ALLOWED_FALLBACKS = ("no view", "uses strategy")


@dataclass
class World:
    """One repository with a rig, written to in-process, fed by the hook's own function."""

    repo: Path
    scratch: Path
    mp: pytest.MonkeyPatch
    feeds: int = 0
    served: Counter[str] = field(default_factory=Counter)
    mrs: int = 0

    def store(self) -> Store:
        return Store.open(str(self.repo))

    def beads(self) -> dict[str, Bead]:
        return dict(self.store().snapshot().beads)

    def convoys(self) -> dict[str, Convoy]:
        return dict(self.store().snapshot().convoys)

    def write(self, mutate: Callable[[Tx], None], what: str) -> None:
        with contextlib.suppress(ConvoyError):  # a write the schema refuses is no write
            self.store().transact(mutate, f"test: {what}")

    def put(self, obj: Any) -> None:
        self.write(lambda tx: tx.put(obj), f"put {obj.id}")

    def tip(self, branch: str) -> str | None:
        return self.store().head_of(f"refs/heads/{branch}")

    def bead(self, bead_id: str, **fields: Any) -> None:
        """Create a bead, or change fields of one (a status through with_status)."""
        found = self.beads().get(bead_id)
        status = fields.pop("status", None)
        bead = touched(found, **fields) if found else Bead(id=bead_id, title=f"bead {bead_id}",
                                                           created_at=NOW, **fields)
        self.put(with_status(bead, status, "by hand") if status else bead)

    def track(self, convoy_id: str, *ids: str, strategy: str = "blocks",
              status: str = "open") -> None:
        self.put(Convoy(id=convoy_id, title=f"convoy {convoy_id}", status=status,
                        tracks=list(ids), strategy=strategy, created_at=NOW,
                        closed_at=NOW if status == "closed" else None))

    def feed(self, expect: str | None = None, because: str | None = None) -> None:
        """The hook's step here (from the view) and in a copy without the view; the same.
        `expect`: how this hook must have been fed (and without a full load unless `full`);
        `because`: why it fell back to the full load, if it did."""
        twin = self.scratch / f"twin-{self.feeds}"
        shutil.copytree(self.repo, twin, symlinks=True)
        for name in (feedview.VIEW_FILE, feedview.FOREST_FILE):
            (twin / ".git" / "convoy" / "cache" / name).unlink(missing_ok=True)
        whole = hook(twin, self.mp)
        viewed = hook(self.repo, self.mp)
        assert viewed == whole
        last = json.loads((self.repo / ".git" / "convoy" / "cache" /
                           feedview.LAST_FILE).read_text())
        self.served[last["served"]] += 1
        if currently_in_test_context():  # hypothesis's statistics: how each hook was fed
            event(f"a hook fed from: {last['served']}")
            if last["pulled"]:
                event("a hook brought trees into its view")
            with contextlib.suppress(feedview.Fallback):
                out = len(self.beads()) - len(feedview.read_view(self.store()).beads)
                event(f"beads left out of the view: {min(out, 4)}{'+' if out >= 4 else ''}")
            if last["served"] == "full":
                event(f"fed from the whole state: {last['why'][:40]}")
            for what, mark in (("dispatched", "✓"), ("landed", "landed in"),
                               ("rolled up an epic", "epic "), ("found stranded", "stranded")):
                if any(mark in line for line in viewed["lines"]):  # type: ignore[union-attr]
                    event(f"a hook {what}")
        allowed = ALLOWED_FALLBACKS if because is None else (because,)
        if last["served"] == "full":
            assert any(w in last["why"] for w in allowed), last
        assert "not saved" not in last["why"], last
        if expect is not None:
            assert last["served"] == expect, last
            assert expect == "full" or last["full_loads"] == 0, last
        shutil.rmtree(twin)
        self.feeds += 1


def hook(repo: Path, mp: pytest.MonkeyPatch) -> dict[str, object]:
    """Run the hook's feeder step in `repo` and say what it did and left."""
    with mp.context() as inner:
        inner.chdir(repo)
        inner.setenv(hookrun.HOOK_ENV, "1")  # the hook sets it; undone with the rest
        lines = hookrun.run_hook("post-merge", [])
    convoy = repo / ".git" / "convoy"
    assert not (convoy / "hook-errors.log").exists(), (convoy / "hook-errors.log").read_text()
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", cwd=repo)
    return {
        "lines": lines,
        "state": state_files(repo),
        "refs": [r for r in refs.splitlines() if not r.startswith("refs/heads/convoy/state ")],
        "files": {name: (convoy / name).read_text() for name in RUNTIME_FILES
                  if (convoy / name).exists()},
    }


def state_files(repo: Path) -> dict[str, str]:
    """Every file of the state ref, by path (a difference names the file and the field)."""
    listing = git("ls-tree", "-r", "--format=%(objectname) %(path)", "refs/heads/convoy/state",
                  cwd=repo)
    return {path: git("cat-file", "blob", blob, cwd=repo)
            for blob, path in (line.split(" ", 1) for line in listing.splitlines())}


# --- writes ----------------------------------------------------------------------------------


def some_id(w: World, data: st.DataObject) -> str:
    """Mostly a bead that exists, now and then any id (one that may never exist)."""
    ids = sorted(w.beads())
    if ids and data.draw(st.integers(0, 3)) > 0:
        return data.draw(st.sampled_from(ids))
    return data.draw(st.sampled_from(IDS))


def some_dep(w: World, data: st.DataObject) -> Dep:
    kinds = ["blocks", "blocks", "waits-for", "merge-blocks", *model.DEP_TYPES]
    return Dep(some_id(w, data), data.draw(st.sampled_from(kinds)))


def create(w: World, data: st.DataObject) -> None:
    """A bead: mostly a task under an epic, blocked by beads that exist."""
    beads = w.beads()
    free = [i for i in IDS if i not in beads]
    if not free:
        return
    epics = sorted(b.id for b in beads.values() if b.type == "epic")
    parent = data.draw(st.sampled_from(["none", "epic", "epic", "any"]))
    w.put(Bead(
        id=data.draw(st.sampled_from(free)), title="a bead",
        type=data.draw(st.sampled_from(["task", "task", "task", "epic", "epic", "bug",
                                        "decision"])),
        parent=(data.draw(st.sampled_from(epics)) if parent == "epic" and epics else
                some_id(w, data) if parent == "any" else None),
        deps=[some_dep(w, data) for _ in range(data.draw(st.integers(0, 2)))],
        priority=data.draw(st.integers(0, 4)), created_at=NOW))


def plan(w: World, data: st.DataObject) -> None:
    """An epic and a few tasks under it, in one write (as an import or `stage` makes them):
    most such trees stay out of the view until something reaches them."""
    beads = w.beads()
    free = [i for i in IDS if i not in beads]
    if len(free) < 2:
        return
    size = data.draw(st.integers(2, min(5, len(free))))
    ids = data.draw(st.lists(st.sampled_from(free), min_size=size, max_size=size, unique=True))
    epic, tasks = ids[0], ids[1:]
    made = [Bead(id=epic, title="a plan", type="epic", created_at=NOW,
                 deps=[some_dep(w, data)] if data.draw(st.integers(0, 3)) == 0 else [])]
    for n, task in enumerate(tasks):
        deps = [Dep(tasks[n - 1], "blocks")] if n and data.draw(st.booleans()) else []
        made.append(Bead(id=task, title="a task", parent=epic, deps=deps, created_at=NOW,
                         priority=data.draw(st.integers(0, 4))))

    def mutate(tx: Tx) -> None:
        for bead in made:
            tx.put(bead)

    w.write(mutate, f"plan {epic}")


def existing(w: World, data: st.DataObject) -> Bead | None:
    beads = w.beads()
    return beads[data.draw(st.sampled_from(sorted(beads)))] if beads else None


def status(w: World, data: st.DataObject) -> None:
    if bead := existing(w, data):
        w.put(with_status(bead, data.draw(st.sampled_from(model.BEAD_STATUSES))))


def close(w: World, data: st.DataObject) -> None:
    """A bead closed by hand (`done`, `bead close`): mostly work, now and then an epic."""
    beads = w.beads()
    open_ = sorted(b.id for b in beads.values() if not b.done and
                   (b.type != "epic" or data.draw(st.integers(0, 3)) == 0))
    if open_:
        w.put(with_status(beads[data.draw(st.sampled_from(open_))], "closed", "done"))


def reparent(w: World, data: st.DataObject) -> None:
    if bead := existing(w, data):
        w.put(touched(bead, parent=data.draw(st.none()) if data.draw(st.booleans())
                      else some_id(w, data)))


def add_dep(w: World, data: st.DataObject) -> None:
    if bead := existing(w, data):
        w.put(touched(bead, deps=[*bead.deps, some_dep(w, data)]))


def drop_deps(w: World, data: st.DataObject) -> None:
    if bead := existing(w, data):
        w.put(touched(bead, deps=[]))


def retitle(w: World, data: st.DataObject) -> None:
    if bead := existing(w, data):
        w.put(touched(bead, title=f"{bead.title}!", labels=["x"]))


def aim(w: World, data: st.DataObject) -> None:
    if bead := existing(w, data):
        w.put(touched(bead, target=data.draw(st.sampled_from([None, "main", "side"])),
                      rig=data.draw(st.sampled_from([None, "app"])),
                      branch=data.draw(st.sampled_from([bead.branch, "side"]))))


def integrate(w: World, data: st.DataObject) -> None:
    epics = sorted(b.id for b in w.beads().values() if b.type == "epic")
    if not epics:
        return
    epic = w.beads()[data.draw(st.sampled_from(epics))]
    branch = f"int/{epic.id}"
    if w.tip(branch) is None:
        git("branch", branch, "main", cwd=w.repo)
    w.put(touched(epic, integration_branch=branch))


def convoy(w: World, data: st.DataObject) -> None:
    tasks = sorted(b.id for b in w.beads().values() if b.type != "epic")
    picks = [data.draw(st.sampled_from(tasks)) if tasks and data.draw(st.booleans())
             else some_id(w, data) for _ in range(data.draw(st.integers(1, 3)))]
    w.put(Convoy(id=data.draw(st.sampled_from(CONVOYS)), title="a convoy", status="open",
                 tracks=sorted(set(picks)),
                 strategy=data.draw(st.sampled_from(["blocks"] * 6 + ["serial"])),
                 created_at=NOW))


def convoy_change(w: World, data: st.DataObject) -> None:
    convoys = w.convoys()
    if not convoys:
        return
    found = convoys[data.draw(st.sampled_from(sorted(convoys)))]
    if data.draw(st.booleans()):
        w.put(touched(found, status="closed", closed_at=NOW))
    else:
        w.put(touched(found, tracks=[*found.tracks, some_id(w, data)]))


def record_mr(w: World, data: st.DataObject) -> None:
    if not (bead := existing(w, data)):
        return
    state = data.draw(st.sampled_from(["merged", "conflict", "queued"]))
    tip = w.tip("main") or ""
    w.mrs += 1
    w.put(MergeRequest(id=f"mr-{w.mrs}", bead=bead.id, branch=f"convoy/{bead.id}",
                       commit=tip, target="main", status=state,
                       merged_as=tip if state == "merged" else None,
                       closed_at=NOW if state == "merged" else None, created_at=NOW))


def commit_on(w: World, branch: str, parents: list[str], message: str) -> str:
    tree = git("rev-parse", f"{parents[0]}^{{tree}}", cwd=w.repo)
    args = [a for p in parents for a in ("-p", p)]
    made = git("commit-tree", tree, *args, "-m", message, cwd=w.repo)
    git("update-ref", f"refs/heads/{branch}", made, cwd=w.repo)
    return made


def work(w: World, data: st.DataObject) -> None:
    """A worker commits on a dispatched bead's branch."""
    flying = sorted(b.id for b in w.beads().values() if b.branch and w.tip(b.branch))
    if flying:
        bead = w.beads()[data.draw(st.sampled_from(flying))]
        commit_on(w, bead.branch or "", [w.tip(bead.branch or "") or ""], f"work {bead.id}")


def land(w: World, data: st.DataObject) -> None:
    """A worker's commit on a bead's branch is merged into its target (plain git, as a
    person does), now and then without the commit (nothing to land)."""
    ready = sorted(b.id for b in w.beads().values() if b.branch and b.target and
                   w.tip(b.branch) and w.tip(b.target))
    if ready:
        bead = w.beads()[data.draw(st.sampled_from(ready))]
        target, branch = bead.target or "", bead.branch or ""
        if data.draw(st.integers(0, 4)) > 0:
            commit_on(w, branch, [w.tip(branch) or ""], f"work {bead.id}")
        commit_on(w, target, [w.tip(target) or "", w.tip(branch) or ""], f"land {bead.id}")


WRITES = [plan, create, create, status, close, close, reparent, add_dep, add_dep, drop_deps,
          retitle, aim, integrate, convoy, convoy, convoy_change, record_mr, work, land, land,
          land]


def new_world(root: Path, mp: pytest.MonkeyPatch) -> World:
    """A repository with a state, a rig of capacity 3 on main without a dispatch command (a
    dispatch makes the branch and starts nothing), and this clone's id (both copies share
    it: dispatches record it)."""
    repo = make_repo(root / "repo")
    mp.chdir(repo)
    mp.setenv("CONVOY_NOW", NOW)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main", "--capacity", "3", "--default")
    world = World(repo, root, mp)
    world.store().clone_id()
    return world


# No shrinking: an example is a repository and dozens of hooks, and shrinking one took over
# five minutes; a failing example prints every draw (each write and its arguments), and the
# stories below are the small cases.
@given(st.data())
@settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_a_hook_fed_from_the_patched_view_decides_what_the_whole_state_decides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: st.DataObject) -> None:
    with monkeypatch.context() as mp:
        world = new_world(Path(tempfile.mkdtemp(dir=tmp_path)), mp)
        for _ in range(data.draw(st.integers(1, 3), label="plans at first")):
            plan(world, data)
        for _ in range(data.draw(st.integers(1, 4), label="beads at first")):
            create(world, data)
        convoy(world, data)
        world.feed()
        for _ in range(data.draw(st.integers(4, 24), label="writes")):
            data.draw(st.sampled_from(WRITES), label="write")(world, data)
            if data.draw(st.integers(0, 2), label="feed now?") == 0:
                world.feed()
        world.feed()
        world.feed()  # back to back: nothing written since


# --- one story per rule of the patch (gitconvoy.flow.feedview, plan.feedreach) -----------------


def a_new_convoy_brings_in_its_members_trees(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-2", parent="t-0", deps=[Dep("t-1", "blocks")])
    w.bead("t-3")
    w.track("c-0", "t-3")
    w.feed("full")
    w.track("c-1", "t-2", "t-1")
    w.feed("patched")  # t-1 dispatched, t-2 waits for it


def a_blocker_of_an_ancestor_comes_in(w: World) -> None:
    w.bead("t-0", type="epic", deps=[Dep("t-9", "blocks")])
    w.bead("t-1", parent="t-0")
    w.bead("t-9")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-9", status="closed")
    w.track("c-1", "t-1")
    w.feed("patched")  # t-1 is ready only because its epic's blocker closed


def a_dep_added_to_a_member_brings_its_blocker_in(w: World) -> None:
    w.bead("t-0")
    w.bead("t-1")
    w.bead("t-2", type="epic")
    w.bead("t-3", parent="t-2")
    w.track("c-0", "t-0")
    w.feed("full")
    w.bead("t-1", deps=[Dep("t-3", "blocks")])
    w.track("c-1", "t-1")
    w.feed("patched")
    w.bead("t-3", status="closed")
    w.feed("patched")  # t-3's epic rolls up; t-1 is dispatched


def a_task_closed_by_hand_rolls_its_epic_up(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-2", parent="t-0", status="closed")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-1", status="closed")
    w.feed("patched")  # the epic outside the view closes


def a_bead_created_under_an_epic_outside(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0", status="closed")
    w.bead("t-2", parent="t-0")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-3", parent="t-0", status="in_progress")
    w.feed("patched")


def a_bead_moved_between_epics_outside(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-2", parent="t-0", status="closed")
    w.bead("t-3", type="epic")
    w.bead("t-4", parent="t-3")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-1", parent="t-3")  # t-0 is left with closed work only: it closes
    w.feed("patched")


def a_bead_created_with_an_id_others_name_as_parent(w: World) -> None:
    w.bead("t-1", parent="t-9", status="closed")
    w.bead("t-2", parent="t-9", status="closed")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-9", type="epic")  # its children are all closed: it closes
    w.feed("patched")


def a_member_moved_under_a_blocked_epic(w: World) -> None:
    w.bead("t-0", type="epic", deps=[Dep("t-8", "blocks")])
    w.bead("t-8")
    w.bead("t-1")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-1", parent="t-0")
    w.track("c-1", "t-1")
    w.feed("patched")  # held back by its new epic's blocker
    w.bead("t-8", status="closed")
    w.feed("patched")


def a_member_in_the_view_moved_under_an_epic_outside(w: World) -> None:
    w.bead("t-0", type="epic", deps=[Dep("t-8", "blocks")])
    w.bead("t-8")
    w.bead("t-7")
    w.bead("t-1", deps=[Dep("t-7", "blocks")])
    w.track("c-0", "t-1")
    w.feed("full")
    w.bead("t-1", parent="t-0")
    w.bead("t-7", status="closed")
    w.feed("patched")  # free of its own blocker, held back by its new epic's


def an_epic_left_to_roll_up_while_nothing_was_open(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0", status="closed")
    w.bead("t-5")
    w.feed("full")  # nothing open, nothing in flight: the step does nothing at all
    w.track("c-0", "t-5")
    w.feed("patched")  # now it rolls every epic up, this one included


def an_epic_in_progress_outside_is_all_that_is_in_flight(w: World) -> None:
    w.bead("t-0", type="epic", status="in_progress")
    w.bead("t-1", parent="t-0", status="closed")
    w.bead("t-2", parent="t-0")
    w.feed("full")  # something is in flight: the targets are watched
    w.bead("t-7")
    w.feed("patched")
    w.bead("t-0", title="renamed")
    w.feed("patched")
    w.bead("t-2", status="closed")
    w.feed("patched")  # the epic closes: nothing is in flight any more
    w.bead("t-8")
    w.feed("patched")


def a_bead_put_in_flight_by_hand(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-1", status="in_progress", target="main", branch="convoy/t-1", rig="app")
    w.feed("patched")  # it holds a slot of the rig and its branch is watched


def a_branch_named_as_a_target_outside(w: World) -> None:
    w.bead("t-1", branch="side")
    w.bead("t-2")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-2", target="side")  # now "side" is a target: no bead's own work branch
    w.feed("patched")


def a_child_of_a_tombstone_under_a_blocked_epic(w: World) -> None:
    w.bead("t-0", type="epic", deps=[Dep("t-8", "blocks")])
    w.bead("t-8")
    w.bead("t-1", parent="t-0", status="tombstone")
    w.bead("t-2", parent="t-1")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.track("c-1", "t-2")
    w.feed("patched")
    w.bead("t-8", status="closed")
    w.feed("patched")


def a_parent_loop(w: World) -> None:
    w.bead("t-1", type="epic")
    w.bead("t-2", parent="t-1", type="epic")
    w.bead("t-3", parent="t-2")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-1", parent="t-2")
    w.track("c-1", "t-3")
    w.feed("patched")


def a_closed_convoy_lets_its_trees_go(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.track("c-1", "t-1")
    w.feed("full")
    w.track("c-1", "t-1", status="closed")
    w.feed("patched")
    w.track("c-2", "t-1")
    w.feed("patched")


def an_epic_given_an_integration_branch(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    git("branch", "int/t-0", "main", cwd=w.repo)
    w.bead("t-0", integration_branch="int/t-0")
    w.track("c-1", "t-1")
    w.feed("patched")  # dispatched onto the integration branch


def a_merged_mr_names_a_landing(w: World) -> None:
    w.bead("t-1")
    w.bead("t-2", deps=[Dep("t-1", "blocks")])
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    side = commit_on(w, "side", [w.tip("main") or ""], "work of t-1 elsewhere")
    w.bead("t-1", status="closed")
    w.put(MergeRequest(id="mr-1", bead="t-1", branch="convoy/t-1", commit=side, target="main",
                       status="merged", merged_as=side, closed_at=NOW, created_at=NOW))
    w.track("c-1", "t-2")
    w.feed("patched")


def a_convoy_of_another_strategy(w: World) -> None:
    w.bead("t-1")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.track("c-1", "t-1", strategy="serial")
    w.feed("full")  # a strategy may read more of the graph: the whole state
    w.track("c-1", "t-1", status="closed")
    w.feed("full")  # no view was kept
    w.bead("t-2")
    w.feed("patched")


def a_bead_nothing_reaches(w: World) -> None:
    w.bead("t-0", type="epic")
    w.bead("t-1", parent="t-0")
    w.bead("t-5")
    w.track("c-0", "t-5")
    w.feed("full")
    w.bead("t-7")
    w.bead("t-1", title="renamed")
    w.feed("patched")
    last = json.loads((w.repo / ".git" / "convoy" / "cache" / feedview.LAST_FILE).read_text())
    assert last["pulled"] == 0


STORIES = [a_new_convoy_brings_in_its_members_trees, a_blocker_of_an_ancestor_comes_in,
           a_dep_added_to_a_member_brings_its_blocker_in, a_task_closed_by_hand_rolls_its_epic_up,
           a_bead_created_under_an_epic_outside, a_bead_moved_between_epics_outside,
           a_bead_created_with_an_id_others_name_as_parent, a_member_moved_under_a_blocked_epic,
           a_member_in_the_view_moved_under_an_epic_outside,
           an_epic_left_to_roll_up_while_nothing_was_open,
           an_epic_in_progress_outside_is_all_that_is_in_flight,
           a_bead_put_in_flight_by_hand, a_branch_named_as_a_target_outside,
           a_child_of_a_tombstone_under_a_blocked_epic, a_parent_loop,
           a_closed_convoy_lets_its_trees_go, an_epic_given_an_integration_branch,
           a_merged_mr_names_a_landing, a_convoy_of_another_strategy, a_bead_nothing_reaches]


@pytest.mark.parametrize("story", STORIES, ids=[s.__name__ for s in STORIES])
def test_each_rule_of_the_patch_feeds_as_the_whole_state(
        story: Callable[[World], None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as mp:
        story(new_world(tmp_path, mp))


def test_a_damaged_view_or_a_forest_of_another_view_is_a_full_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The view's files are untrusted, like the read cache: a changed byte, or a forest file
    left for another view (two hooks racing), is read as no view, and the step feeds from
    the whole state (then writes a fresh view)."""
    with monkeypatch.context() as mp:
        w = new_world(tmp_path, mp)
        for epic, task in (("t-0", "t-1"), ("t-7", "t-6")):
            w.bead(epic, type="epic")
            w.bead(task, parent=epic)
        w.bead("t-5")
        w.track("c-0", "t-5")
        w.feed("full")
        cache = w.repo / ".git" / "convoy" / "cache"
        view, forest = cache / feedview.VIEW_FILE, cache / feedview.FOREST_FILE
        view.write_bytes(view.read_bytes().replace(b'"t-5"', b'"t-4"'))
        w.bead("t-2")
        w.feed("full", because="the view is damaged")
        older = forest.read_bytes()
        w.track("c-1", "t-1")
        w.feed("patched")  # t-0's tree came in: a new forest file
        forest.write_bytes(older)
        w.bead("t-6", status="closed")  # its epic's tree must come in: the forest is read
        w.feed("full", because="the forest file belongs to another view")
        w.bead("t-3")
        w.feed("patched")
