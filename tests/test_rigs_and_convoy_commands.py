"""Rig commands and the smaller convoy commands: what they write, and what they refuse."""

from __future__ import annotations

import json

import pytest
from conftest import convoy, ok, ref_of


def test_rig_lifecycle(state_repo):
    ok("rig", "add", "app", "--target", "main", "--capacity", "2", "--prefix", "t",
       "--default", "--strategy", "squash")
    ok("rig", "update", "app", "--capacity", "4")
    ok("rig", "park", "app")
    rigs = json.loads(ok("rig", "list", "--json"))
    assert rigs == [{"name": "app", "target": "main", "capacity": 4, "parked": True,
                     "strategy": "squash", "prefixes": ["t"], "in_flight": 0,
                     "default": True}]
    ok("rig", "unpark", "app")
    assert json.loads(ok("rig", "list", "--json"))[0]["parked"] is False


@pytest.mark.parametrize("args,message,code", [
    (("rig", "add", "1bad"), "rig name '1bad' is not valid", 1),
    (("rig", "add", "a/b"), "rig name 'a/b' is not valid", 1),
    (("rig", "update", "ghost", "--capacity", "2"), "unknown rig 'ghost'", 1),
    (("rig", "park", "ghost"), "unknown rig 'ghost'", 1),
    (("rig", "update", "app"), "nothing to update", 1),
    (("rig", "add", "app"), "rig 'app' already exists", 1),
    (("rig", "add", "x", "--capacity", "0"), "Invalid value for '--capacity'", 2),
])
def test_rig_bad_input(state_repo, args, message, code):
    ok("rig", "add", "app")
    before = ref_of(state_repo)
    res = convoy(*args)
    assert res.code == code, res.err
    assert message in res.err
    assert ref_of(state_repo) == before


@pytest.mark.parametrize("args,message", [
    (("create", "empty"), "a convoy needs at least one bead"),
    (("create", "x", "nope-1"), "unknown bead 'nope-1'"),
    (("create", "  ", "BEAD"), "convoy title must not be empty"),
    (("create", "x", "BEAD", "--rig", "ghost"), "unknown rig 'ghost'"),
    (("create", "x", "--from-epic", "BEAD"), "is a task, not an epic"),
    (("add", "convoy-nope", "BEAD"), "unknown convoy 'convoy-nope'"),
    (("status", "convoy-nope"), "unknown convoy 'convoy-nope'"),
    (("close", "convoy-nope"), "unknown convoy 'convoy-nope'"),
])
def test_convoy_command_bad_input(state_repo, args, message):
    bead = ok("bead", "create", "one")
    before = ref_of(state_repo)
    res = convoy(*[bead if a == "BEAD" else a for a in args])
    assert res.code == 1, res.err
    assert message in res.err and len(res.err.strip().splitlines()) == 1
    assert ref_of(state_repo) == before


def test_a_bead_is_tracked_by_one_open_convoy(state_repo):
    bead = ok("bead", "create", "one")
    first = ok("create", "first", bead)
    before = ref_of(state_repo)
    res = convoy("create", "second", bead)
    assert res.code == 1
    assert f"open convoy {first} already tracks {bead}" in res.err
    assert ref_of(state_repo) == before


def test_close_needs_force_with_unfinished_work_and_add_reopens(state_repo):
    one = ok("bead", "create", "one")
    two = ok("bead", "create", "two")
    cid = ok("create", "batch", one)
    res = convoy("close", cid)
    assert res.code == 1 and "--force" in res.err
    ok("bead", "close", one)
    ok("close", cid)
    assert json.loads(ok("status", cid, "--json"))["status"] == "closed"
    assert convoy("close", cid).code == 1
    ok("add", cid, two)
    shown = json.loads(ok("status", cid, "--json"))
    assert shown["status"] == "open" and shown["tracks"] == sorted([one, two])
    listed = json.loads(ok("list", "--json"))
    assert [c["id"] for c in listed] == [cid]
    assert listed[0]["progress"] == {"closed": 1, "total": 2, "in_flight": 0}


def test_staged_convoy_can_be_cancelled_and_restaged_in_place(state_repo):
    ok("rig", "add", "app")
    one = ok("bead", "create", "one")
    first = json.loads(ok("stage", one, "--json"))["convoy"]
    again = json.loads(ok("stage", one, "--json"))["convoy"]
    assert first == again
    ok("close", first)
    assert json.loads(ok("status", first, "--json"))["close_reason"] == "cancelled"
