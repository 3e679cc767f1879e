"""Deps through the CLI, and the ready/blocked/cycle rules of DESIGN §4 as pure functions."""

from __future__ import annotations

import json

import pytest
from conftest import convoy, ok, ref_of
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.plan import graph
from gitconvoy.state.model import (
    BEAD_STATUSES,
    BEAD_TYPES,
    BLOCKING_DEP_TYPES,
    DEP_TYPES,
    DONE_STATUSES,
    SLINGABLE_TYPES,
    Bead,
    Dep,
)


def beads(*items: Bead) -> dict[str, Bead]:
    return {b.id: b for b in items}


def ready_ids(state: dict[str, Bead]) -> list[str]:
    return [b.id for b in graph.ready_beads(state)]


# --- the rules, one by one ----------------------------------------------------------------


def test_blocking_types_block_and_the_others_do_not():
    for dep_type in DEP_TYPES:
        if dep_type == "parent-child":
            continue
        state = beads(Bead("a", "A", deps=[Dep("b", dep_type)]), Bead("b", "B"))
        assert ("a" in ready_ids(state)) is (dep_type not in BLOCKING_DEP_TYPES), dep_type


@pytest.mark.parametrize("status", BEAD_STATUSES)
def test_only_closed_and_tombstone_satisfy_a_blocker(status):
    closed_at = "2026-01-01T00:00:00Z" if status == "closed" else None
    state = beads(Bead("a", "A", deps=[Dep("b")]),
                  Bead("b", "B", status=status, closed_at=closed_at))
    assert ("a" in ready_ids(state)) is (status in DONE_STATUSES)


def test_a_missing_blocker_blocks():
    state = beads(Bead("a", "A", deps=[Dep("gone")]))
    assert ready_ids(state) == []
    [(bead, why)] = graph.blocked_beads(state)
    assert why[0].describe() == "gone (missing, blocks)"


def test_epics_and_decisions_are_never_ready():
    state = beads(*(Bead(t, t, type=t) for t in BEAD_TYPES))
    assert set(ready_ids(state)) == set(SLINGABLE_TYPES)


def test_only_open_beads_are_ready():
    state = beads(*(Bead(s, s, status=s, closed_at="x" if s == "closed" else None)
                    for s in BEAD_STATUSES))
    assert ready_ids(state) == ["open"]


def test_parent_child_alone_never_blocks():
    state = beads(Bead("e", "E", type="epic"), Bead("t", "T", parent="e"))
    assert ready_ids(state) == ["t"]


def test_a_blocker_on_an_epic_holds_back_every_descendant():
    state = beads(
        Bead("root", "Root", type="epic"),
        Bead("A", "Sub A", type="epic", parent="root"),
        Bead("B", "Sub B", type="epic", parent="root", deps=[Dep("A")]),
        Bead("a1", "a1", parent="A"), Bead("a2", "a2", parent="A", deps=[Dep("a1")]),
        Bead("B1", "sub-sub", type="epic", parent="B"),
        Bead("b1", "b1", parent="B1"), Bead("b2", "b2", parent="B"),
    )
    assert ready_ids(state) == ["a1"]
    blocked = {b.id: why for b, why in graph.blocked_beads(state)}
    assert [x.describe() for x in blocked["b1"]] == ["A (open, blocks) via epic B"]
    assert [x.to_json() for x in blocked["b2"]] == [
        {"on": "A", "type": "blocks", "status": "open", "via": "B"}]
    # A finishes (its tasks closed, then the epic): B's whole subtree becomes ready
    done = {**state}
    for bead_id in ("a1", "a2", "A"):
        done[bead_id] = Bead(bead_id, bead_id, type=state[bead_id].type,
                             parent=state[bead_id].parent, status="closed", closed_at="x")
    assert sorted(ready_ids(done)) == ["b1", "b2"]


def test_ready_is_ordered_by_priority_then_age_then_id():
    state = beads(Bead("c", "c", priority=1, created_at="2"), Bead("b", "b", priority=1,
                  created_at="1"), Bead("a", "a", priority=3), Bead("z", "z", priority=0))
    assert ready_ids(state) == ["z", "b", "c", "a"]


def test_manual_blocked_status_is_listed_as_blocked():
    state = beads(Bead("m", "M", status="blocked"))
    assert [(b.id, why) for b, why in graph.blocked_beads(state)] == [("m", ())]


def test_parent_loops_do_not_hang():
    state = beads(Bead("x", "X", parent="y"), Bead("y", "Y", parent="x"))
    assert sorted(ready_ids(state)) == ["x", "y"]
    assert graph.find_cycles(state)


def test_cycles_over_blocking_deps_and_epics():
    state = beads(Bead("a", "A", deps=[Dep("b")]), Bead("b", "B", deps=[Dep("c")]),
                  Bead("c", "C", deps=[Dep("a")]), Bead("d", "D", deps=[Dep("a", "related")]))
    [cycle] = graph.find_cycles(state)
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    # a task blocked by its own epic is a deadlock too
    state = beads(Bead("e", "E", type="epic"), Bead("t", "T", parent="e", deps=[Dep("e")]))
    assert graph.cycle_through(state, "t") == ["t", "e", "t"]  # starts at the bead asked
    assert graph.cycle_through(state, "e") == ["e", "t", "e"]
    # related edges never make a cycle
    state = beads(Bead("a", "A", deps=[Dep("b", "related")]),
                  Bead("b", "B", deps=[Dep("a", "related")]))
    assert graph.find_cycles(state) == []


# --- property: no bead is ready while it or an ancestor has an open blocker ---------------


@st.composite
def states(draw: st.DrawFn) -> dict[str, Bead]:
    n = draw(st.integers(1, 14))
    names = [f"b{i}" for i in range(n)]
    out = {}
    for name in names:
        status = draw(st.sampled_from(BEAD_STATUSES))
        deps = draw(st.lists(st.tuples(st.sampled_from(names + ["missing"]),
                                       st.sampled_from(DEP_TYPES[:1] + DEP_TYPES[2:])),
                             max_size=3))
        parent = draw(st.none() | st.sampled_from(names))
        out[name] = Bead(
            name, name, type=draw(st.sampled_from(BEAD_TYPES)), status=status,
            priority=draw(st.integers(0, 4)), parent=parent if parent != name else None,
            deps=sorted({Dep(on, t) for on, t in deps if on != name}),
            closed_at="x" if status == "closed" else None,
        )
    return out


def open_blockers(state: dict[str, Bead], bead: Bead) -> list[str]:
    """The reference definition, written the slow and obvious way."""
    found = []
    seen: set[str] = set()
    current: Bead | None = bead
    while current is not None and current.id not in seen:
        seen.add(current.id)
        for dep in current.deps:
            if dep.type in BLOCKING_DEP_TYPES:
                target = state.get(dep.on)
                if target is None or target.status not in ("closed", "tombstone"):
                    found.append(dep.on)
        current = state.get(current.parent) if current.parent else None
    return found


@settings(max_examples=300, deadline=None)
@given(states())
def test_ready_means_open_slingable_and_nothing_open_above_it(state):
    ready = set(ready_ids(state))
    for bead in state.values():
        expected = (bead.status == "open" and bead.type in SLINGABLE_TYPES
                    and not open_blockers(state, bead))
        assert (bead.id in ready) is expected, bead
    blocked = {b.id for b, _ in graph.blocked_beads(state)}
    for bead in state.values():
        if bead.status in DONE_STATUSES:
            assert bead.id not in blocked
        elif open_blockers(state, bead) or bead.status == "blocked":
            assert bead.id in blocked
    assert not ready & blocked


@settings(max_examples=200, deadline=None)
@given(states())
def test_every_reported_cycle_is_a_real_deadlock(state):
    index = graph.Index(state)
    for cycle in graph.find_cycles(state, index):
        assert cycle[0] == cycle[-1] and len(cycle) >= 2
        for a, b in zip(cycle, cycle[1:], strict=False):
            bead = state[a]
            # each step is a wait: a blocking dep, an epic a child waits on, or a parent
            # whose completion waits for its child
            assert (Dep(b, "blocks") in bead.deps or any(
                d.on == b and d.type in BLOCKING_DEP_TYPES for d in bead.deps)
                or bead.parent == b or state[b].parent == a
                or b in index.ancestors(a) or a in index.ancestors(b)), (cycle, a, b)


# --- the CLI ------------------------------------------------------------------------------


def test_dep_add_list_remove(state_repo):
    a = ok("bead", "create", "A")
    b = ok("bead", "create", "B")
    epic = ok("bead", "create", "E", "--type", "epic")
    assert ok("dep", "add", a, b) == f"{a} depends on {b} (blocks)"
    ok("dep", "add", a, epic, "--type", "parent-child")
    ok("dep", "add", b, epic, "-t", "related")
    listed = json.loads(ok("dep", "list", a, "--json"))
    assert listed == {
        "id": a,
        "depends_on": sorted([{"on": b, "type": "blocks", "status": "open"},
                              {"on": epic, "type": "parent-child", "status": "open"}],
                             key=lambda d: (d["on"], d["type"])),
        "dependents": [],
    }
    assert json.loads(ok("dep", "list", epic, "--json"))["dependents"] == sorted(
        [{"id": a, "type": "parent-child"}, {"id": b, "type": "related"}],
        key=lambda d: d["id"])
    assert f"{a} → {b}  (blocks, open)" in ok("dep", "list", a).splitlines()
    assert ok("bead", "show", a, "--json").count('"parent"') == 1
    assert json.loads(ok("bead", "show", a, "--json"))["parent"] == epic
    assert ok("dep", "remove", a, b) == f"{a} no longer depends on {b}"
    ok("dep", "remove", a, epic, "--type", "parent-child")
    got = json.loads(ok("bead", "show", a, "--json"))
    assert got["deps"] == [] and got["parent"] is None
    before = ref_of(state_repo)
    res = convoy("dep", "remove", a, b)
    assert (res.code, res.err) == (1, f"error: {a} has no dep on {b}\n")
    assert ref_of(state_repo) == before
    ok("dep", "add", a, b)
    assert ok("dep", "add", a, b) == f"{a} depends on {b} (blocks)"  # idempotent
    assert ref_of(state_repo) != before


def test_ready_and_blocked_through_the_cli(state_repo):
    timeout = ok("bead", "create", "Fix auth timeout")
    epic = ok("bead", "create", "--type", "epic", "Auth overhaul")
    validation = ok("bead", "create", "Add validation", "--parent", epic, "-p", "1")
    decision = ok("bead", "create", "Pick a hash", "--type", "decision")
    ok("dep", "add", epic, decision)
    ready = json.loads(ok("ready", "--json"))
    assert [r["id"] for r in ready] == [timeout]
    blocked = json.loads(ok("blocked", "--json"))
    by_id = {b["id"]: b["blocked_by"] for b in blocked}
    assert by_id == {
        epic: [{"on": decision, "type": "blocks", "status": "open", "via": None}],
        validation: [{"on": decision, "type": "blocks", "status": "open", "via": epic}],
    }
    assert f"    blocked by {decision} (open, blocks) via epic {epic}" in ok("blocked")
    ok("bead", "close", decision)
    assert [r["id"] for r in json.loads(ok("ready", "--json"))] == [validation, timeout]
    assert [line.split()[0] for line in ok("ready", "-n", "1").splitlines()] == [validation]
    assert json.loads(ok("blocked", "--json")) == []


def test_nothing_ready_says_so_on_stderr(state_repo):
    res = convoy("ready")
    assert (res.code, res.out, res.err) == (0, "", "nothing is ready\n")
    assert json.loads(ok("ready", "--json")) == []


def test_dep_cycles_lists_deadlocks_made_outside_dep_add(state_repo):
    from gitconvoy.state.store import Store

    assert (convoy("dep", "cycles").code, ok("dep", "cycles")) == (0, "no cycles")
    Store.open().transact(lambda tx: [tx.put(Bead("t-a", "A", deps=[Dep("t-b")])),
                                      tx.put(Bead("t-b", "B", deps=[Dep("t-a")]))],
                          "a merge of two plans")
    res = convoy("dep", "cycles")
    assert res.code == 1 and res.out == "t-a → t-b → t-a\n"
    assert json.loads(convoy("dep", "cycles", "--json").out) == [
        {"cycle": ["t-a", "t-b", "t-a"]}]


def test_dep_add_refuses_a_cycle_through_an_epic(state_repo):
    epic = ok("bead", "create", "E", "--type", "epic")
    task = ok("bead", "create", "T", "--parent", epic)
    other = ok("bead", "create", "O")
    ok("dep", "add", other, epic)  # O waits for the whole epic
    before = ref_of(state_repo)
    res = convoy("dep", "add", task, other)  # T (inside E) waiting for O: deadlock
    assert res.code == 1
    assert res.err == (f"error: refused: that would make a dependency cycle "
                       f"{task} → {other} → {epic} → {task}\n")
    assert ref_of(state_repo) == before


@settings(max_examples=300, deadline=None)
@given(states(), st.data())
def test_the_quick_acyclic_count_agrees_with_the_cycle_walk(state, data):
    """find_cycles first counts (Kahn) and walks for cycles (Tarjan) only when the count
    finds one: on any state (tombstones, parent loops, a subset of a bigger index) a count
    that finds none is right, and the answer is the walk's."""
    index = graph.Index(state)
    subset = {b: state[b] for b in data.draw(st.sets(st.sampled_from(sorted(state))))} \
        if state and data.draw(st.booleans()) else state
    walked = graph._components(subset, index)
    if graph._acyclic(subset, index):
        assert walked == []
    live = {b: x for b, x in subset.items() if x.status != "tombstone"}
    if walked == [] and all(state[b].parent not in subset or state[b].parent in live
                            for b in subset):
        assert graph._acyclic(subset, index)  # only a loop of tombstones can differ
    assert graph.find_cycles(subset, index) == [
        graph._cycle_in(comp, index, subset) for comp in walked]
