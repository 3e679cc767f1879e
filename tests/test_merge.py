"""The three-way field merge (pure): the rules of docs/sync.md, then hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.state.codec import dump_yaml, load_yaml
from gitconvoy.state.layout import object_path
from gitconvoy.state.merge import (
    SET_FIELDS,
    Unmergeable,
    canonical,
    merge_file,
    merge_file_or_pick,
    merge_object,
)
from gitconvoy.state.model import Bead, Config

T0, T1, T2, T3 = (f"2026-01-01T00:00:0{i}.000000Z" for i in range(4))


def bead(**fields: object) -> dict:
    base = {"id": "t-1", "title": "Fix it", "type": "task", "status": "open", "priority": 2,
            "created_at": T0, "created_by": "ann", "updated_at": T0}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def merged(base: dict | None, ours: dict | None, theirs: dict | None) -> dict | None:
    one = merge_object(base, ours, theirs)
    two = merge_object(base, theirs, ours)
    assert one.value == two.value, "the merge must not depend on which side is ours"
    return one.value


def test_fields_changed_on_different_sides_both_survive():
    base = bead()
    out = merged(base, bead(title="New title", updated_at=T1), bead(priority=0, updated_at=T2))
    assert out["title"] == "New title" and out["priority"] == 0 and out["updated_at"] == T2


def test_same_field_both_sides_later_updated_at_wins():
    base = bead()
    out = merged(base, bead(assignee="bob", updated_at=T2), bead(assignee="cy", updated_at=T1))
    assert out["assignee"] == "bob" and out["updated_at"] == T2


def test_same_field_same_stamp_has_a_symmetric_tie_break():
    """Equal updated_at: the side whose canonical text is larger wins ("cy" > "bob"), and the
    winner is the same whichever side is ours."""
    base = bead()
    bob, cy = bead(assignee="bob", updated_at=T1), bead(assignee="cy", updated_at=T1)
    assert merge_object(base, bob, cy).value["assignee"] == "cy"
    assert merge_object(base, cy, bob).value["assignee"] == "cy"
    ann = bead(assignee="ann", updated_at=T1)
    assert merge_object(base, ann, bob).value["assignee"] == "bob"
    assert merge_object(base, bob, ann).value["assignee"] == "bob"


def test_labels_merge_as_sets():
    base = bead(labels=["a", "b", "c"])
    ours = bead(labels=["a", "c", "x"], updated_at=T1)  # removed b, added x
    theirs = bead(labels=["a", "b", "y"], updated_at=T2)  # removed c, added y
    assert merged(base, ours, theirs)["labels"] == ["a", "x", "y"]


def test_deps_merge_as_sets_of_on_and_type():
    d = [{"on": "t-2", "type": "blocks"}]
    base = bead(deps=d)
    ours = bead(deps=d + [{"on": "t-3", "type": "blocks"}], updated_at=T1)
    theirs = bead(deps=[{"on": "t-2", "type": "related"}], updated_at=T2)
    assert merged(base, ours, theirs)["deps"] == [
        {"on": "t-2", "type": "related"}, {"on": "t-3", "type": "blocks"},
    ]


def test_removal_on_both_sides_and_the_last_element():
    base = bead(labels=["a"])
    out = merged(base, bead(updated_at=T1), bead(title="x", updated_at=T2))
    assert "labels" not in out and out["title"] == "x"


def closed(at: str, reason: str = "done", **more: object) -> dict:
    return bead(status="closed", closed_at=at, close_reason=reason, updated_at=at, **more)


def test_closed_wins_over_a_later_status_change_that_never_saw_it():
    base = bead()
    out = merged(base, closed(T1), bead(status="in_progress", started_at=T2, updated_at=T2))
    assert out["status"] == "closed" and out["closed_at"] == T1
    assert out["started_at"] == T2 and out["updated_at"] == T2


def test_a_newer_reopen_beats_an_older_close_and_vice_versa():
    base = closed(T0)
    reclosed = closed(T1, "again")
    reopened = bead(status="open", updated_at=T2)
    out = merged(base, reclosed, reopened)
    assert out["status"] == "open" and "closed_at" not in out and "close_reason" not in out
    out = merged(base, closed(T3, "again"), reopened)
    assert out["status"] == "closed" and out["closed_at"] == T3


def test_tombstone_wins():
    base = bead()
    out = merged(base, bead(status="tombstone", updated_at=T1), closed(T2))
    assert out["status"] == "tombstone" and "closed_at" not in out


def test_delete_versus_edit_keeps_the_edit():
    base = bead()
    assert merged(base, None, bead(title="edited", updated_at=T1))["title"] == "edited"
    assert merged(base, None, base) is None
    assert merged(None, None, base) == base


def test_added_on_both_sides_same_object_merges():
    ours = bead(labels=["a"], updated_at=T1)
    theirs = bead(labels=["b"], title="other", updated_at=T2)
    out = merged(None, ours, theirs)
    assert out["labels"] == ["a", "b"] and out["title"] == "other"


def test_two_different_objects_under_one_id_are_not_fused():
    ours = bead(title="mine", created_by="ann")
    theirs = bead(title="yours", created_by="bob")
    one = merge_object(None, ours, theirs)
    two = merge_object(None, theirs, ours)
    assert one.value == two.value == ours
    assert one.renamed == two.renamed
    assert one.renamed["title"] == "yours" and one.renamed["id"].startswith("t-1-")
    assert "t-1" in one.notes[0] and one.renamed["id"] in one.notes[0]


def test_merge_file_renames_into_the_fanned_out_folder():
    path = object_path("beads", "t-1")
    ours = dump_yaml(bead(title="mine"))
    theirs = dump_yaml(bead(title="yours", created_by="bob"))
    result = merge_file(path, None, ours, theirs)
    assert result.data == ours
    [(new_path, data)] = result.extra.items()
    new_id = load_yaml(data, new_path)["id"]
    assert new_path == object_path("beads", new_id)


def test_merge_file_output_is_a_valid_bead():
    path = object_path("beads", "t-1")
    base = bead(labels=["a"])
    out = merge_file(path, dump_yaml(base), dump_yaml(closed(T1, labels=["a", "b"])),
                     dump_yaml(bead(status="in_progress", labels=["c"], updated_at=T2)))
    parsed = Bead.from_dict(load_yaml(out.data, path), path)
    assert parsed.status == "closed" and parsed.labels == ["b", "c"]
    assert out.data == dump_yaml(parsed.to_dict())  # the layout a command writes


def test_convoy_yaml_merges_rigs_as_a_map():
    base = {"schema": 1, "prefix": "t", "rigs": {"a": {"target": "main", "capacity": 3}}}
    ours = {"schema": 1, "prefix": "t",
            "rigs": {"a": {"target": "main", "capacity": 5}, "b": {"capacity": 1}}}
    theirs = {"schema": 1, "prefix": "t",
              "rigs": {"a": {"target": "dev", "capacity": 3}, "c": {"capacity": 2}}}
    out = merged(base, ours, theirs)
    assert out["rigs"] == {"a": {"target": "dev", "capacity": 5}, "b": {"capacity": 1},
                           "c": {"capacity": 2}}
    data = merge_file("convoy.yaml", dump_yaml(base), dump_yaml(ours), dump_yaml(theirs)).data
    assert set(Config.from_dict(load_yaml(data, "convoy.yaml"), "convoy.yaml").rigs) == {
        "a", "b", "c"}


def test_convoy_tracks_merge_as_a_set_and_the_notice_flag_stays_set():
    base = {"id": "c-1", "title": "C", "status": "open", "tracks": ["t-1", "t-2"],
            "created_at": T0, "updated_at": T0}
    ours = {**base, "tracks": ["t-1", "t-2", "t-3"], "updated_at": T2}
    theirs = {**base, "status": "closed", "closed_at": T1, "notified": True, "updated_at": T1}
    out = merged(base, ours, theirs)
    assert out["tracks"] == ["t-1", "t-2", "t-3"]
    assert out["status"] == "closed" and out["notified"] is True


def test_merge_request_counters_grow_and_merged_beats_a_stale_retry():
    base = {"id": "mr-1", "bead": "t-1", "branch": "b", "commit": "a" * 40, "target": "main",
            "status": "queued", "retries": 1, "created_at": T0, "updated_at": T0}
    landed = {**base, "status": "merged", "closed_at": T1, "merged_as": "b" * 40,
              "updated_at": T1}
    retried = {**base, "status": "conflict", "retries": 2, "updated_at": T2}
    out = merged(base, landed, retried)
    assert out["status"] == "merged" and out["closed_at"] == T1 and out["retries"] == 2
    assert merged(base, {**base, "retries": 3, "updated_at": T1},
                  {**base, "retries": 2, "updated_at": T2})["retries"] == 3


@pytest.mark.parametrize("bad,larger", [
    (b"title: [unclosed\n", "bad"),  # sorts after good's "id: t-1…"
    (b"a: [unclosed\n", "good"),  # sorts before it
])
def test_unparseable_side_is_unmergeable_for_the_driver_and_picked_whole_for_sync(bad, larger):
    """The driver leaves git's conflict; sync keeps the larger text whole, whichever side is
    ours, so two clones that merge the same pair pick the same side."""
    path = object_path("beads", "t-1")
    base = dump_yaml(bead())
    good = dump_yaml(bead(title="x", updated_at=T1))
    assert good.startswith(b"id: t-1\n")
    want = bad if larger == "bad" else good
    note = f"{path}: line 2: did not find expected ',' or ']': kept one side whole"
    for ours, theirs in ((good, bad), (bad, good)):
        with pytest.raises(Unmergeable, match="beads/.*t-1.yaml"):
            merge_file(path, base, ours, theirs)
        picked = merge_file_or_pick(path, base, ours, theirs)
        assert (picked.data, picked.notes, picked.extra) == (want, [note], {})


# --- properties -------------------------------------------------------------------------

STAMPS = st.sampled_from([T0, T1, T2, T3])
LABELS = st.lists(st.sampled_from("abcdef"), unique=True).map(sorted)
DEPS = st.lists(
    st.builds(lambda on, kind: {"on": on, "type": kind},
              st.sampled_from(["t-2", "t-3", "t-4"]), st.sampled_from(["blocks", "related"])),
    unique_by=canonical,
).map(lambda ds: sorted(ds, key=canonical))


@st.composite
def bead_dicts(draw: st.DrawFn) -> dict:
    status = draw(st.sampled_from(["open", "in_progress", "closed", "tombstone"]))
    stamp = draw(STAMPS)
    fields = {
        "title": draw(st.sampled_from(["A", "B", "C"])),
        "priority": draw(st.integers(0, 4)),
        "assignee": draw(st.sampled_from([None, "ann", "bob"])),
        "labels": draw(LABELS) or None,
        "deps": draw(DEPS) or None,
        "status": status,
        "closed_at": stamp if status == "closed" else None,
        "close_reason": draw(st.sampled_from(["done", "dup"])) if status == "closed" else None,
        "rig": draw(st.sampled_from([None, "r1"])),
        "updated_at": stamp,
    }
    return bead(**fields)


def added_elements_survive(base: dict, a: dict, c: dict, out: dict) -> None:
    for name in SET_FIELDS:
        b_set = {canonical(x) for x in base.get(name, [])}
        a_set = {canonical(x) for x in a.get(name, [])}
        c_set = {canonical(x) for x in c.get(name, [])}
        got = {canonical(x) for x in out.get(name, [])}
        assert (a_set - b_set) | (c_set - b_set) <= got, name
        assert a_set & c_set <= got, name
        assert got <= a_set | c_set, name


@settings(max_examples=200, deadline=None)
@given(bead_dicts(), bead_dicts(), bead_dicts())
def test_merge_is_symmetric_and_keeps_additions(base: dict, a: dict, c: dict) -> None:
    one = merge_object(base, a, c).value
    assert one == merge_object(base, c, a).value
    added_elements_survive(base, a, c, one)
    assert ("closed_at" in one) == (one["status"] == "closed")
    assert one["updated_at"] in (a["updated_at"], c["updated_at"])
    path = object_path("beads", "t-1")
    Bead.from_dict(load_yaml(dump_yaml(one), path), path)
    # clones converge only if both orders write the same bytes
    raw = [dump_yaml(x) for x in (base, a, c)]
    assert merge_file(path, *raw).data == merge_file(path, raw[0], raw[2], raw[1]).data


@settings(max_examples=100, deadline=None)
@given(bead_dicts(), bead_dicts())
def test_merge_with_itself_and_with_the_base(base: dict, a: dict) -> None:
    assert merge_object(base, a, a).value == a
    assert merge_object(base, base, a).value == a
    assert merge_object(base, a, base).value == a


@settings(max_examples=100, deadline=None)
@given(bead_dicts(), bead_dicts())
def test_set_fields_commute_without_a_base(a: dict, c: dict) -> None:
    """Added on both sides (same object, no base): the union of every set field."""
    one = merge_object(None, a, c).value
    assert one == merge_object(None, c, a).value
    for name in SET_FIELDS:
        want = {canonical(x) for x in a.get(name, []) + c.get(name, [])}
        assert {canonical(x) for x in one.get(name, [])} == want
