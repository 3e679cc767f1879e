"""The pure rules behind `stage --infer-blocks / --max-depth / --validate`
(gitconvoy.plan.stage_options), over generated hierarchies, without a repository."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.plan import graph
from gitconvoy.plan.stage_options import (
    StageOptions,
    capstone_id,
    creation_key,
    deepest_path,
    infer_chain,
    plan_edits,
)
from gitconvoy.plan.staging import member_tree
from gitconvoy.state.model import Bead, Dep
from gitconvoy.state.snapshot import Snapshot

STAMPS = st.sampled_from([f"2026-01-01T00:00:0{i}Z" for i in range(4)] + [None])


@st.composite
def hierarchies(draw: st.DrawFn) -> dict[str, Bead]:
    """A root epic and up to 14 beads below it: each hangs under an earlier epic, with a
    creation stamp drawn from a few (ties and missing stamps included) and, now and then, a
    stated blocking dep on an earlier bead."""
    beads = {"r": Bead(id="r", title="root", type="epic", created_at=None)}
    for n in range(draw(st.integers(0, 14))):
        epics = [b for b in beads.values() if b.type == "epic"]
        parent = draw(st.sampled_from(epics)).id
        deps = []
        if draw(st.integers(0, 5)) == 0 and len(beads) > 1:
            deps = [Dep(draw(st.sampled_from(sorted(beads)[1:])), "blocks")]
        bead_id = f"b.{n}"
        beads[bead_id] = Bead(id=bead_id, title=bead_id, parent=parent, deps=deps,
                              type=draw(st.sampled_from(["epic", "task"])),
                              created_at=draw(STAMPS))
    return beads


def members_of(beads: dict[str, Bead]) -> tuple[list[str], graph.Index]:
    index = graph.Index(beads)
    return ["r", *index.descendants("r")], index


@settings(max_examples=200, deadline=None)
@given(hierarchies())
def test_inferred_pairs_chain_siblings_in_creation_order(beads: dict[str, Bead]) -> None:
    members, index = members_of(beads)
    chain = infer_chain(beads, members, index)
    by_parent: dict[str | None, list[tuple[str, str]]] = {}
    for later, earlier in chain.pairs:
        a, b = beads[earlier], beads[later]
        assert a.type == b.type == "epic" and a.parent == b.parent  # siblings only
        assert creation_key(a) < creation_key(b)  # the earlier one goes first
        by_parent.setdefault(a.parent, []).append((later, earlier))
    for pairs in by_parent.values():  # one chain per parent: each waits for the one before
        waits = [later for later, _ in pairs]
        fors = [earlier for _, earlier in pairs]
        assert len(set(waits)) == len(waits) and len(set(fors)) == len(fors)
        assert len(set(waits) - set(fors)) == 1  # a single line, not a fan
    for later, earlier in chain.ties:
        assert (later, earlier) in chain.pairs
        assert beads[earlier].created_at in (None, beads[later].created_at)


@settings(max_examples=200, deadline=None)
@given(hierarchies())
def test_siblings_a_person_ordered_are_left_alone(beads: dict[str, Bead]) -> None:
    members, index = members_of(beads)
    chained = {b for pair in infer_chain(beads, members, index).pairs for b in pair}
    for bead in beads.values():
        for dep in bead.blocking_deps():
            mine = {bead.id, *index.ancestors(bead.id)}
            theirs = {dep.on, *index.ancestors(dep.on)}
            for a in mine - theirs:
                for b in theirs - mine:
                    if beads[a].parent == beads[b].parent and beads[a].type == "epic" \
                            and beads[b].type == "epic":
                        assert a not in chained and b not in chained


@settings(max_examples=150, deadline=None)
@given(hierarchies())
def test_inferring_then_staging_without_it_leaves_no_inferred_dep(beads: dict[str, Bead]) -> None:
    members, index = members_of(beads)
    on = plan_edits(beads, members, index, "r", StageOptions(infer_blocks=True))
    after = {**beads, **on.changed}
    assert sorted(on.inferred) == sorted(infer_chain(beads, members, index).pairs)
    again = plan_edits(after, members, graph.Index(after), "r", StageOptions(infer_blocks=True))
    assert not again.changed  # the same plan twice writes nothing the second time
    off = plan_edits(after, members, graph.Index(after), "r", StageOptions())
    final = {**after, **off.changed}
    assert not any(d.inferred for b in final.values() for d in b.deps)
    assert {b: final[b].deps for b in beads} == {b: beads[b].deps for b in beads}


@settings(max_examples=200, deadline=None)
@given(hierarchies())
def test_the_deepest_path_is_a_parent_chain_as_deep_as_the_tree(beads: dict[str, Bead]) -> None:
    members, index = members_of(beads)
    snap = Snapshot(None, None, None, {"beads": beads, "convoys": {}})
    tree = member_tree(snap, members, index)
    path = deepest_path(beads, tree)
    assert path[0] == "r" and len(path) - 1 == max(depth for depth, _ in tree)
    for parent, child in zip(path, path[1:], strict=False):
        assert beads[child].parent == parent


@settings(max_examples=100, deadline=None)
@given(hierarchies())
def test_the_capstone_waits_for_every_task_and_is_made_once(beads: dict[str, Bead]) -> None:
    members, index = members_of(beads)
    opts = StageOptions(validate=True, at="2026-02-01T00:00:00Z", actor="me")
    first = plan_edits(beads, members, index, "r", opts)
    cap = first.changed[capstone_id("r")]
    assert first.capstone_new and cap.parent == "r" and cap.formula == "mol-validate"
    assert {d.on for d in cap.deps} == {m for m in members if beads[m].slingable}
    after = {**beads, **first.changed}
    again = plan_edits(after, [*members, cap.id], graph.Index(after), "r", opts)
    assert again.capstone == cap.id and not again.capstone_new and not again.changed
