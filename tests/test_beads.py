"""Beads through the CLI: create, show, list, update, close, reopen, delete, ids, batches."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, ok, ref_of

from gitconvoy.state import ids
from gitconvoy.state.model import Bead
from gitconvoy.state.store import Store

BEAD_KEYS = [
    "id", "title", "type", "status", "priority", "description", "acceptance", "assignee",
    "labels", "parent", "deps", "rig", "branch", "target", "base_commit",
    "integration_branch", "created_at", "created_by", "updated_at", "started_at",
    "closed_at", "close_reason", "dispatch", "import_key", "mr", "formula", "formula_vars",
    "steps_done",
]


def show(bead_id: str) -> dict:
    return json.loads(ok("bead", "show", bead_id, "--json"))


def subjects() -> list[str]:
    return git("log", "--format=%s", STATE_REF).splitlines()


def test_create_prints_an_id_with_the_prefix_and_defaults(state_repo):
    bead_id = ok("bead", "create", "Fix auth timeout")
    assert re.fullmatch(r"t-[0-9a-z]{4}", bead_id)
    got = show(bead_id)
    assert list(got) == BEAD_KEYS
    assert got["title"] == "Fix auth timeout" and got["type"] == "task"
    assert got["status"] == "open" and got["priority"] == 2
    assert got["created_by"] and got["created_at"] == got["updated_at"]
    assert got["closed_at"] is None and got["labels"] == [] and got["deps"] == []
    assert subjects()[0] == f"bead create {bead_id}: Fix auth timeout"


def test_create_with_every_option(state_repo):
    epic = ok("bead", "create", "--type", "epic", "Auth overhaul")
    other = ok("bead", "create", "Other")
    bead_id = ok("bead", "create", "Add validation", "--type", "feature", "-p", "0",
                 "-d", "why", "--acceptance", "tests pass", "-a", "alice", "-l", "b",
                 "-l", "a", "--parent", epic, "--dep", other, "--dep", f"related:{epic}",
                 "--rig", "r1", "--target", "dev")
    got = show(bead_id)
    assert (got["type"], got["priority"], got["description"], got["acceptance"]) == (
        "feature", 0, "why", "tests pass")
    assert got["assignee"] == "alice" and got["labels"] == ["a", "b"]
    assert got["parent"] == epic and (got["rig"], got["target"]) == ("r1", "dev")
    assert got["deps"] == sorted([{"on": other, "type": "blocks"},
                                  {"on": epic, "type": "related"}], key=lambda d: d["on"])


def test_show_text_and_several_ids(state_repo):
    a = ok("bead", "create", "Alpha", "-d", "line one\nline two")
    b = ok("bead", "create", "Beta")
    text = ok("bead", "show", a)
    assert text.splitlines()[0] == f"{a}: Alpha"
    assert "    line two" in text
    both = json.loads(ok("bead", "show", a, b, "--json"))
    assert [x["id"] for x in both] == [a, b]


def test_list_filters_and_order(state_repo):
    low = ok("bead", "create", "low", "-p", "4", "-l", "x")
    high = ok("bead", "create", "high", "-p", "0", "-a", "bob")
    bug = ok("bead", "create", "bug", "-t", "bug", "-l", "x", "-l", "y")
    ok("bead", "close", bug)
    rows = json.loads(ok("bead", "list", "--json"))
    assert [r["id"] for r in rows] == [high, bug, low]  # priority, then age, then id
    assert {r["id"] for r in json.loads(ok("bead", "list", "-s", "open", "--json"))} == {
        low, high}
    assert [r["id"] for r in json.loads(ok("bead", "list", "-t", "bug", "--json"))] == [bug]
    assert [r["id"] for r in json.loads(ok("bead", "list", "-l", "x", "-l", "y",
                                           "--json"))] == [bug]
    assert [r["id"] for r in json.loads(ok("bead", "list", "--assignee", "bob",
                                           "--json"))] == [high]
    assert ok("bead", "list").splitlines()[0].startswith(f"{high:<12} P0 task")


def test_update_fields_and_labels(state_repo):
    bead_id = ok("bead", "create", "Task", "-l", "keep", "-l", "drop")
    ok("bead", "update", bead_id, "--status", "in_progress", "--assignee", "alice",
       "--label", "auth", "--remove-label", "drop", "--title", "Renamed", "-p", "1")
    got = show(bead_id)
    assert got["status"] == "in_progress" and got["started_at"]
    assert got["labels"] == ["auth", "keep"] and got["title"] == "Renamed"
    assert got["priority"] == 1 and got["assignee"] == "alice"
    assert got["updated_at"] >= got["created_at"]
    assert subjects()[0].startswith(f"bead update {bead_id}: ")


def test_update_with_nothing_to_change_is_a_usage_mistake(state_repo):
    bead_id = ok("bead", "create", "Task")
    before = ref_of(state_repo)
    res = convoy("bead", "update", bead_id)
    assert res.code == 1 and res.err.startswith("error: nothing to update")
    assert ref_of(state_repo) == before


def test_close_sets_closed_at_and_reason_reopen_clears_them(state_repo):
    bead_id = ok("bead", "create", "Task")
    assert ok("bead", "close", bead_id, "--reason", "done") == f"closed {bead_id}"
    got = show(bead_id)
    assert got["status"] == "closed" and got["closed_at"] and got["close_reason"] == "done"
    ok("bead", "reopen", bead_id)
    got = show(bead_id)
    assert got["status"] == "open" and got["closed_at"] is None
    assert got["close_reason"] is None
    res = convoy("bead", "reopen", bead_id)
    assert res.code == 1 and "is open, not closed" in res.err


def test_status_closed_through_update_keeps_the_invariant(state_repo):
    bead_id = ok("bead", "create", "Task")
    ok("bead", "update", bead_id, "--status", "closed", "--reason", "dup")
    got = show(bead_id)
    assert got["closed_at"] and got["close_reason"] == "dup"
    ok("bead", "update", bead_id, "--status", "deferred")
    assert show(bead_id)["closed_at"] is None


def test_delete_writes_a_tombstone(state_repo):
    keep = ok("bead", "create", "Keep")
    gone = ok("bead", "create", "Gone")
    assert ok("bead", "delete", gone) == f"deleted {gone}"
    assert show(gone)["status"] == "tombstone"
    listed = [r["id"] for r in json.loads(ok("bead", "list", "--json"))]
    assert listed == [keep]
    assert gone in [r["id"] for r in json.loads(ok("bead", "list", "--all", "--json"))]
    # the file stays on the ref, so the id cannot come back through a merge
    assert any(p.endswith(f"/{gone}.yaml")
               for p in git("ls-tree", "-r", "--name-only", STATE_REF).splitlines())
    before = ref_of(state_repo)
    res = convoy("bead", "update", gone, "--title", "back")
    assert (res.code, res.err) == (1, f"error: bead '{gone}' was deleted\n")
    assert ref_of(state_repo) == before
    res = convoy("bead", "create", "again", "--id", gone)
    assert res.code == 1 and "already exists" in res.err


def test_explicit_ids_including_epic_children(state_repo):
    ok("bead", "create", "Epic", "--type", "epic", "--id", "auth")
    assert ok("bead", "create", "First", "--id", "auth.1", "--parent", "auth") == "auth.1"
    assert ok("bead", "create", "Under_score", "--id", "auth.2_b-c") == "auth.2_b-c"
    assert show("auth.1")["parent"] == "auth"
    res = convoy("bead", "create", "dup", "--id", "auth.1")
    assert (res.code, res.err) == (1, "error: bead 'auth.1' already exists\n")


def test_one_commit_per_operation(state_repo):
    a = ok("bead", "create", "A")
    b = ok("bead", "create", "B")
    ok("dep", "add", a, b)
    ok("bead", "update", a, "-l", "x")
    ok("bead", "close", b)
    ok("bead", "delete", a)
    assert subjects() == [
        f"bead delete {a}", f"bead close {b}", f"bead update {a}: add_labels x",
        f"dep add {a} {b} (blocks)", f"bead create {b}: B", f"bead create {a}: A",
        "init: prefix t",
    ]
    # reads write nothing
    before = ref_of(state_repo)
    for args in (["bead", "list"], ["ready"], ["blocked"], ["bead", "show", a],
                 ["dep", "list", a], ["dep", "cycles"]):
        convoy(*args)
    assert ref_of(state_repo) == before


def test_id_length_grows_with_the_bead_count():
    lengths = [ids.id_length(n) for n in (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000)]
    assert lengths == sorted(lengths) and lengths[0] == 4 and lengths[-1] > lengths[2]
    assert ids.id_length(100_000) >= 6
    taken: set[str] = set()
    for n in range(2000):
        new = ids.new_id("p", "same title", taken, n + 1)
        assert new not in taken and re.fullmatch(r"p-[0-9a-z]{4,}", new)
        taken.add(new)


def test_ids_in_a_big_state_are_longer(state_repo):
    Store.open().transact(
        lambda tx: [tx.put(Bead(id=f"t-seed{n}", title="seed")) for n in range(1500)], "seed"
    )
    assert len(ok("bead", "create", "late").split("-")[1]) == ids.id_length(1501)


def test_batch_create_is_one_transaction(state_repo, tmp_path):
    batch = tmp_path / "beads.yaml"
    batch.write_text(
        "- {id: e1, title: Epic, type: epic}\n"
        "- {id: e1.1, title: First, parent: e1, labels: [x]}\n"
        "- {id: e1.2, title: Second, parent: e1, deps: [e1.1, 'related:e1']}\n"
        "- {title: No id given, priority: 1}\n"
    )
    made = ok("bead", "create", "--batch", str(batch)).splitlines()
    assert made[:3] == ["e1", "e1.1", "e1.2"] and made[3].startswith("t-")
    assert subjects()[0] == f"bead create: 4 beads (e1 … {made[3]})"
    assert len(subjects()) == 2
    assert show("e1.2")["deps"] == [{"on": "e1", "type": "related"},
                                    {"on": "e1.1", "type": "blocks"}]
    ready = [line.split()[0] for line in ok("ready").splitlines()]
    assert ready == [made[3], "e1.1"]


def test_batch_json_and_refusals(state_repo, tmp_path):
    good = tmp_path / "b.json"
    good.write_text(json.dumps([{"title": "one"}, {"title": "two", "type": "bug"}]))
    out = json.loads(ok("bead", "create", "--batch", str(good), "--json"))
    assert [b["title"] for b in out] == ["one", "two"]
    before = ref_of(state_repo)
    forward = tmp_path / "forward.yaml"  # items may only refer to earlier items
    forward.write_text("- {id: a, title: A, deps: [b]}\n- {id: b, title: B}\n")
    res = convoy("bead", "create", "--batch", str(forward))
    assert res.code == 1 and res.err == "error: unknown bead 'b': see 'git convoy bead list'\n"
    assert ref_of(state_repo) == before
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: x1, title: X, type: epic}\n- {id: x2, title: Y, parent: x1, "
                   "deps: [x1]}\n")
    res = convoy("bead", "create", "--batch", str(bad))
    assert res.code == 1
    assert res.err == "error: refused: that would make a dependency cycle x1 → x2 → x1\n"
    assert ref_of(state_repo) == before
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("- {title: X, colour: red}\n")
    res = convoy("bead", "create", "--batch", str(unknown))
    assert res.err == f"error: {unknown}: item 1: unknown field 'colour'\n"
    assert ref_of(state_repo) == before


@pytest.mark.parametrize("kind", ["task", "bug", "feature", "chore", "epic", "decision"])
def test_every_type_can_be_created(state_repo, kind):
    bead_id = ok("bead", "create", "x", "--type", kind)
    assert Store.open().snapshot().bead(bead_id).type == kind


def test_docs_json_lists_every_bead_key_in_order():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "json.md").read_text()
    section = doc.split("## The bead object")[1].split("\n## ")[0]
    assert re.findall(r"^\| `([a-z_]+)` \|", section, re.M) == BEAD_KEYS
    assert list(json.loads(section.split("```json")[1].split("```")[0])) == BEAD_KEYS
