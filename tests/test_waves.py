"""Waves, gating and epic roll-up: pure functions checked on examples and random DAGs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.plan import epics, graph
from gitconvoy.plan.waves import plan_waves
from gitconvoy.state.model import Bead, Dep


def B(bead_id: str, *, type: str = "task", status: str = "open", parent: str | None = None,
      deps: tuple[str, ...] = (), priority: int = 2, integration: str | None = None) -> Bead:
    return Bead(id=bead_id, title=bead_id, type=type, status=status, parent=parent,
                deps=[Dep(d, "blocks") for d in deps], priority=priority,
                closed_at="x" if status == "closed" else None, integration_branch=integration)


def beads_of(*items: Bead) -> dict[str, Bead]:
    return {b.id: b for b in items}


def test_sub_epic_b_waits_for_all_of_a():
    beads = beads_of(
        B("root", type="epic"),
        B("A", type="epic", parent="root"), B("B", type="epic", parent="root", deps=("A",)),
        B("a1", parent="A"), B("a2", parent="A", deps=("a1",)), B("a3", parent="A"),
        B("b1", parent="B"), B("b2", parent="B"), B("b3", parent="B", deps=("b1",)),
    )
    plan = plan_waves(beads, beads)
    assert plan.waves == [["a1", "a3"], ["a2"], ["b1", "b2"], ["b3"]]
    assert not plan.gated and not plan.cycle


def test_priority_then_id_orders_a_wave():
    beads = beads_of(B("z", priority=0), B("a", priority=2), B("m", priority=2))
    assert plan_waves(beads, beads).waves == [["z", "a", "m"]]


def test_outside_blocker_and_decision_gate():
    beads = beads_of(
        B("out"), B("dec", type="decision"),
        B("t1", deps=("out",)), B("t2", deps=("dec",)), B("t3", deps=("t1",)), B("t4"),
    )
    plan = plan_waves(beads, ["t1", "t2", "t3", "t4", "dec"])
    assert plan.waves == [["t4"]]
    assert set(plan.gated) == {"t1", "t2", "t3"}
    assert plan.gated["t3"][0].on == "t1"


def test_closed_beads_are_done_not_waved():
    beads = beads_of(B("t1", status="closed"), B("t2", deps=("t1",)))
    plan = plan_waves(beads, beads)
    assert plan.done == ["t1"] and plan.waves == [["t2"]]


def test_epic_roll_up():
    beads = beads_of(B("E", type="epic"), B("t1", parent="E"), B("t2", parent="E"))
    assert epics.epic_changes(beads) == {}
    beads["t1"] = B("t1", parent="E", status="hooked")
    assert epics.epic_changes(beads) == {"E": "in_progress"}
    beads["t1"] = B("t1", parent="E", status="closed")
    beads["t2"] = B("t2", parent="E", status="closed")
    assert epics.epic_changes(beads) == {"E": "closed"}
    beads["E"] = B("E", type="epic", integration="integration/E")
    assert epics.epic_changes(beads) == {"E": "in_progress"}


def test_nested_roll_up_closes_root_after_sub_epics():
    beads = beads_of(B("R", type="epic"), B("S", type="epic", parent="R"),
                     B("t", parent="S", status="closed"))
    assert epics.epic_changes(beads) == {"R": "closed", "S": "closed"}


@st.composite
def random_plans(draw: st.DrawFn) -> tuple[dict[str, Bead], list[str]]:
    """A random forest of epics and tasks with acyclic blocking deps (edges go to lower
    numbers only), some closed, some outside the staged set."""
    n = draw(st.integers(2, 18))
    beads: dict[str, Bead] = {}
    for i in range(n):
        kind = draw(st.sampled_from(["task", "task", "task", "epic", "bug", "decision"]))
        parents = [b for b in beads.values() if b.type == "epic"]
        parent = draw(st.sampled_from([None] + [p.id for p in parents]))
        deps = tuple(sorted({f"b{j}" for j in draw(st.lists(st.integers(0, max(i - 1, 0)),
                                                           max_size=3)) if j < i}))
        status = draw(st.sampled_from(["open", "open", "open", "closed", "in_progress"]))
        beads[f"b{i}"] = B(f"b{i}", type=kind, parent=parent, deps=deps, status=status,
                           priority=draw(st.integers(0, 4)))
    members = [b for b in beads if draw(st.booleans()) or beads[b].type == "epic"]
    return beads, members


def _deadlocked(beads: dict[str, Bead]) -> bool:
    return bool(graph.find_cycles(beads))


@settings(max_examples=200, deadline=None)
@given(random_plans())
def test_waves_respect_every_edge_and_place_each_bead_once(data):
    beads, members = data
    if _deadlocked(beads):
        return
    plan = plan_waves(beads, members)
    assert not plan.cycle
    placed = [b for wave in plan.waves for b in wave]
    assert len(placed) == len(set(placed))
    open_work = {m for m in members if beads[m].slingable and beads[m].status != "closed"}
    assert set(placed) | set(plan.gated) == open_work
    assert not set(placed) & set(plan.gated)
    wave_of = {b: n for n, wave in enumerate(plan.waves) for b in wave}
    index = graph.Index(beads)
    for bead_id in placed:
        for blocker in index.blockers(beads[bead_id]):
            target = blocker.on
            if target in wave_of:
                assert wave_of[target] < wave_of[bead_id], (bead_id, target)
            elif beads[target].type == "epic" and target in members:
                for d in index.descendants(target):
                    if d in wave_of:
                        assert wave_of[d] < wave_of[bead_id], (bead_id, d)


@settings(max_examples=200, deadline=None)
@given(random_plans())
def test_no_ready_bead_has_an_open_blocker(data):
    beads, _ = data
    index = graph.Index(beads)
    for bead in graph.ready_beads(beads, index):
        chain = [bead] + [beads[a] for a in index.ancestors(bead.id)]
        for holder in chain:
            for dep in holder.blocking_deps():
                assert beads[dep.on].done


def expanded_waves(beads: dict[str, Bead], members: list[str]) -> tuple[list[list[str]],
                                                                         set[str], list[str]]:
    """The reference: every dep on an epic of the set expanded to one edge per open task
    under it, then layered by removing placed beads wave by wave (waves, gated, cycle)."""
    index = graph.Index(beads)
    member_set = {m for m in members if m in beads and beads[m].status != "tombstone"}
    open_set = {m for m in member_set if beads[m].slingable and not beads[m].done}
    waits: dict[str, set[str]] = {b: set() for b in open_set}
    gated: set[str] = set()
    for bead_id in open_set:
        for holder in [beads[bead_id]] + [beads[a] for a in index.ancestors(bead_id)]:
            for dep in holder.blocking_deps():
                target = beads.get(dep.on)
                if target is not None and target.done:
                    continue
                if dep.on in open_set:
                    waits[bead_id].add(dep.on)
                elif target is not None and target.type == "epic" and dep.on in member_set:
                    waits[bead_id].update(d for d in index.descendants(dep.on)
                                          if d in open_set and d != bead_id)
                else:
                    gated.add(bead_id)
    changed = True
    while changed:
        changed = False
        for bead_id, blockers in waits.items():
            if bead_id not in gated and blockers & gated:
                gated.add(bead_id)
                changed = True
    remaining = {b: set(w) for b, w in waits.items() if b not in gated}
    waves = []
    while remaining:
        wave = sorted((b for b, w in remaining.items() if not w),
                      key=lambda b: (beads[b].priority, b))
        if not wave:
            return waves, gated, sorted(remaining)
        waves.append(wave)
        for b in wave:
            del remaining[b]
        for w in remaining.values():
            w -= set(wave)
    return waves, gated, []


@settings(max_examples=300, deadline=None)
@given(random_plans(), st.data())
def test_one_edge_per_epic_dep_makes_the_waves_of_one_edge_per_task(data, more):
    """A dep on an epic is one edge to the epic's all-of node, not one per task under it:
    the same waves, gated beads and cycle as the expansion, deadlocks included."""
    beads, members = data
    extra = more.draw(st.lists(st.tuples(st.sampled_from(sorted(beads)),
                                         st.sampled_from(sorted(beads))), max_size=3))
    for src, dst in extra:  # edges to anything: epics, their own epic, cycles
        if src != dst:
            bead = beads[src]
            beads[src] = B(src, type=bead.type, parent=bead.parent, status=bead.status,
                           priority=bead.priority,
                           deps=tuple(sorted({d.on for d in bead.deps} | {dst})))
    plan = plan_waves(beads, members)
    waves, gated, cycle = expanded_waves(beads, members)
    assert (plan.waves, set(plan.gated), plan.cycle) == (waves, gated, cycle)
    assert all(blockers[0].on in beads for blockers in plan.gated.values())


def test_a_task_waiting_for_its_own_epic_waits_for_its_siblings_only():
    beads = beads_of(B("E", type="epic"), B("x", parent="E", deps=("E",)), B("y", parent="E"),
                     B("o", deps=("E",)), B("A", type="epic", deps=("E",)),
                     B("a", parent="A"))
    plan = plan_waves(beads, beads)
    assert plan.waves == [["y"], ["x"], ["a", "o"]] and not plan.cycle
    assert plan.wave_of("o") == 3 and plan.wave_of("E") is None
