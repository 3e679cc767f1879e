"""Writes cost the same at 1k and 100k beads (issue 12): each test counts work, never time.

A new id needs the bead count, which used to walk every fan-out folder once per new bead
(a batch of 1,000 creates was quadratic); a big write made one loose object per file;
`stage` built its graph index six times and analysed twice, and expanded each dep on an
epic to one edge per task. Here: the count of a tree is taken once, and another tree's
count follows the change from the last one counted; a big write is one pack, byte for byte
the trees a loose write makes; a stage builds one index and analyses once.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pygit2
import pytest
from conftest import git, ok

from gitconvoy import hookrun
from gitconvoy.git import watch
from gitconvoy.plan import epics, graph, staging, waves
from gitconvoy.state import cache, counts, packs, trees
from gitconvoy.state.layout import KINDS, object_path
from gitconvoy.state.model import Bead, Convoy, Dep
from gitconvoy.state.store import Store


def seed(store: Store, count: int, prefix: str = "t-seed") -> None:
    store.transact(lambda tx: [tx.put(Bead(id=f"{prefix}{n}", title="seed"))
                               for n in range(count)], f"seed {count}")


def objects(repo: Path) -> dict[str, int]:
    rows = git("count-objects", "-v", cwd=repo).splitlines()
    return {k: int(v) for k, _, v in (r.partition(": ") for r in rows) if v.isdigit()}


class Work:
    """Calls of the counting functions, by name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {}
        for name in ("walk", "follow", "_delta", "_entry_count"):
            original = getattr(counts, name)
            monkeypatch.setattr(counts, name, self._counting(name, original))

    def _counting(self, name: str, original):  # type: ignore[no-untyped-def]
        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.calls[name] = self.calls.get(name, 0) + 1
            return original(*args, **kwargs)
        return counted

    def __getitem__(self, name: str) -> int:
        return self.calls.get(name, 0)

    def reset(self) -> None:
        self.calls.clear()


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command as if in a new process: nothing counted in memory yet."""
    monkeypatch.setattr(counts, "_MEMO", {})


def test_a_batch_of_creates_counts_the_state_once(state_repo, tmp_path, monkeypatch,
                                                  fresh_process):
    seed(Store.open(), 300)
    (state_repo / ".git" / "convoy" / counts.COUNTS_FILE).unlink(missing_ok=True)
    work = Work(monkeypatch)
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"title": f"new {n}"} for n in range(200)]))
    made = ok("bead", "create", "--batch", str(batch)).splitlines()
    assert len(made) == 200 == len(set(made))
    # one walk for 200 new ids, then one follow to keep the totals of the tree written
    # (counts.carry: the next create, quick or not, finds them)
    assert work["walk"] == 1 and work["follow"] == 1
    # that one walk visits each entry once: 300 files, at most 300 leaf folders, 256 + 16
    # fan-out folders and the kind folders; the follow opens only what the batch changed:
    # a new leaf folder, its file and the empty side, at most three calls per new bead
    assert work["_entry_count"] <= 300 + 300 + 256 + 16 + len(KINDS) + 3 * 200


def test_one_create_follows_the_change_not_the_state(state_repo, fresh_process):
    """The second create opens only the folders the first one changed, at any size."""
    opened = []
    for size in (50, 1500):
        seed(Store.open(), size, prefix=f"t-s{size}-")
        ok("bead", "create", "counted")  # follows the seed from the last tree counted
        counts._MEMO.clear()
        with pytest.MonkeyPatch.context() as patch:
            work = Work(patch)
            ok("bead", "create", "follows")
        assert work["walk"] == 0 and work["follow"] == 1
        opened.append(work["_delta"] + work["_entry_count"])
    # beads/, three fan-out levels (16 entries each), the leaf: the same at 50 and 1,550
    assert all(n <= 4 * 17 for n in opened), opened


def test_the_followed_count_equals_a_walk(state_repo, fresh_process):
    """Creates, deletions of files and of whole folders, a stray file and a convoy."""
    store = Store.open()
    rng = random.Random(12)
    live: set[str] = set()
    for step in range(12):
        def mutate(tx, step=step):  # type: ignore[no-untyped-def]
            for n in range(rng.randrange(1, 40)):
                bead = Bead(id=f"t-{step}-{n}", title="x")
                tx.put(bead)
                live.add(bead.id)
            for gone in rng.sample(sorted(live), min(len(live), rng.randrange(0, 30))):
                tx.remove("beads", gone)
                live.discard(gone)
            if step % 3 == 0:
                tx.put(Convoy(id=f"convoy-{step}", title="c", tracks=[]))
            if step == 5:
                tx.changes["beads/0/0/notes.txt"] = b"not a state file\n"
        store.transact(mutate, f"step {step}")
        snap = store.snapshot()
        tree = snap._source.tree  # type: ignore[union-attr]
        counts._MEMO.clear()
        assert counts.kind_counts(store.repo, store.common_dir, tree) == \
            counts.walk(counts.pygit2_trees(store.repo), tree)
        assert snap.count("beads") == len(live)


@pytest.mark.parametrize("content", [
    b"\xff\xfe junk \x00\n",
    b"1 " + b"ab" * 20 + b" 1 2 3 4\n",  # a tree this repository does not have
    b"1 not-a-tree 1 2 3 4\n",
    b"1 " + b"ab" * 20 + b" 99999999999 2 3 4\n",  # a number too long
    b"",
])
def test_a_counts_file_of_any_bytes_is_walked_past(state_repo, content, fresh_process):
    seed(Store.open(), 40)
    path = state_repo / ".git" / "convoy" / counts.COUNTS_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    store = Store.open()
    assert store.snapshot().count("beads") == 40
    assert counts.read_counts(str(path))[0] == str(store.snapshot()._source.tree.id)  # type: ignore[union-attr,index]
    ok("bead", "create", "after junk")


def test_a_big_write_is_one_pack(state_repo, tmp_path):
    before = objects(state_repo)
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([{"title": f"bead {n}"} for n in range(packs.PACK_ABOVE + 1)]))
    ok("bead", "create", "--batch", str(batch))
    after = objects(state_repo)
    assert after["packs"] == before["packs"] + 1
    assert after["count"] - before["count"] == 1  # the commit
    assert git("fsck", "--strict", "--no-dangling", cwd=state_repo) == ""
    assert len(ok("bead", "list").splitlines()) == packs.PACK_ABOVE + 1
    ok("bead", "create", "small")  # a small write stays loose: no pack per write
    assert objects(state_repo)["packs"] == after["packs"]


def test_a_packed_write_makes_the_trees_a_loose_write_makes(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r"))
    objects_dir = str(tmp_path / "r" / ".git" / "objects")
    first = {object_path("beads", f"x-{n}"): f"id: x-{n}\n".encode() for n in range(400)}
    first.update({"convoy.yaml": b"schema: 1\n", "convoys/c-1.yaml": b"id: c-1\n"})
    tree = packs.apply_changes_packed(repo, None, first, objects_dir)
    assert tree == trees.apply_changes(repo, None, first)
    second: dict[str, bytes | None] = {object_path("beads", f"x-{n}"): None
                                       for n in range(0, 400, 3)}
    second.update({object_path("beads", f"y-{n}"): b"new\n" for n in range(300)})
    second["convoys/c-1.yaml"] = None  # the folder goes with its last file
    second[object_path("beads", "x-1")] = b"changed\n"
    base = repo[tree]
    again = packs.apply_changes_packed(repo, base, second, objects_dir)
    assert again == trees.apply_changes(repo, base, second)
    assert "convoys" not in repo[again]


def plan_of_two_sub_epics(tmp_path: Path, tasks: int) -> Path:
    """Epic R over sub-epics A and B (B waits for A), `tasks` tasks each."""
    rows = [{"id": "R", "title": "root", "type": "epic"},
            {"id": "A", "title": "a", "type": "epic", "parent": "R"},
            {"id": "B", "title": "b", "type": "epic", "parent": "R", "deps": ["A"]}]
    rows += [{"id": f"{e.lower()}{n}", "title": f"{e} {n}", "parent": e}
             for e in "AB" for n in range(tasks)]
    batch = tmp_path / "plan.json"
    batch.write_text(json.dumps(rows))
    return batch


def test_stage_builds_one_graph_index_and_analyses_once(state_repo, tmp_path, monkeypatch):
    """It built the index six times and ran the whole analysis twice (outside and inside
    its transaction); with no race in between, the plan made before is the plan written."""
    ok("rig", "add", "app", "--target", "main")
    ok("bead", "create", "--batch", str(plan_of_two_sub_epics(tmp_path, 20)))
    children: list[object] = []
    waiters: list[object] = []
    analysed: list[object] = []
    spy(monkeypatch, graph.Index, "_build_children", children)
    spy(monkeypatch, graph.Index, "_build_waiters", waiters)
    spy(monkeypatch, staging, "analyse", analysed)
    out = ok("stage", "R", "--json")
    assert json.loads(out)["waves"][1][0] == "b0"
    # the children once; the waiters never (the cycle count takes its edges from the plan)
    assert (len(children), len(waiters), len(analysed)) == (1, 0, 1)


def test_a_dep_on_an_epic_is_one_edge_per_waiting_task():
    """B's 40 tasks wait for A's 40 through one node, not 1,600 edges."""
    beads = {"A": Bead(id="A", title="a", type="epic"),
             "B": Bead(id="B", title="b", type="epic", deps=[Dep("A", "blocks")])}
    for epic in "AB":
        for n in range(40):
            beads[f"{epic}{n}"] = Bead(id=f"{epic}{n}", title="t", parent=epic)
    seen: list[int] = []
    original = waves._layers

    def counting(edges, beads_):  # type: ignore[no-untyped-def]
        seen.append(sum(len(blockers) for blockers in edges.values()))
        return original(edges, beads_)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(waves, "_layers", counting)
        plan = waves.plan_waves(beads, list(beads))
    assert [len(w) for w in plan.waves] == [40, 40] and plan.wave_of("B7") == 2
    assert seen == [40 + 40]


def test_a_hook_after_a_landing_loads_the_state_once_and_builds_one_index(
        state_repo, tmp_path, monkeypatch):
    """A blocker lands by a plain merge; the post-merge hook's step closes it, rolls epics
    up and dispatches its dependent. It loaded the state once per transaction (3 times),
    built the graph index twice, rolled every epic up twice and scanned the beads for the
    watch list twice; now once each (and of the index only the children, which the roll-up
    needs), the second roll-up only above the dispatched bead. This hook has no view of the
    state yet (gitconvoy.flow.feedview), so it also builds one from the state it loaded:
    one more children index and roll-up check over every epic, and no load (a hook fed from
    a view loads nothing: tests/test_feedview.py)."""
    git("config", "convoy.rig.app.dispatch", "true")
    ok("rig", "add", "app", "--target", "main", "--capacity", "3", "--default")
    ok("bead", "create", "--batch", str(plan_of_two_sub_epics(tmp_path, 3)))
    ok("create", "flight", "a0", "b0")
    ok("feed")  # dispatches a0 (b0 waits for all of A)
    ok("bead", "close", "a1", "a2")  # by hand: the hook's step rolls A up
    git("commit", "-q", "--allow-empty", "-m", "work", cwd=state_repo)
    work = git("commit-tree", "HEAD^{tree}", "-p", "main", "-m", "a0's work")
    git("update-ref", "refs/heads/convoy/a0", work)
    git("merge", "-q", "--ff-only", "convoy/a0", env={"CONVOY_IN_HOOK": "1"})

    calls: dict[str, list[object]] = {"load": [], "children": [], "waiters": [], "roll": [],
                                      "scan": []}
    spy(monkeypatch, cache, "load_all", calls["load"])
    spy(monkeypatch, graph.Index, "_build_children", calls["children"])
    spy(monkeypatch, graph.Index, "_build_waiters", calls["waiters"])
    spy(monkeypatch, epics, "epic_changes", calls["roll"], keep=lambda *a: a[2:])
    spy(monkeypatch, watch, "_scan", calls["scan"])
    monkeypatch.setenv("CONVOY_IN_HOOK", "")  # restored after the hook sets it
    lines = hookrun.run_hook("post-merge", ["0"])
    assert "a0: landed in" in lines[0] and any("✓ b0: dispatch started" in x for x in lines)
    assert ("epic A", "closed") in [tuple(x.split(": ")) for x in lines]
    assert [len(calls[k]) for k in ("load", "children", "waiters", "scan")] == [1, 2, 0, 1]
    # every epic, then only above b0; then the view's check that every epic is rolled up
    assert calls["roll"] == [(None,), (["b0"],), ()]


def spy(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, calls: list[object],
        keep=lambda *a: None) -> None:  # type: ignore[no-untyped-def]
    original = getattr(owner, name)

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(keep(*args, *kwargs.values()))
        return original(*args, **kwargs)
    monkeypatch.setattr(owner, name, counted)
