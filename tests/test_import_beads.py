"""Migrating a beads issues.jsonl export: every mapping rule, an export in the real shapes,
bad lines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import convoy, git, ok, ref_of
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.importers.beads_jsonl import merge_into, parse_export
from gitconvoy.state.model import Bead, Convoy
from gitconvoy.state.store import Store

EXPORT = Path(__file__).parent / "data" / "beads-export.jsonl"
T0 = "2026-01-01T00:00:00Z"


def issue(bead_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": bead_id, "title": f"Title of {bead_id}", "status": "open", "priority": 2,
            "issue_type": "task", "created_at": T0, "updated_at": T0}
    base.update(fields)
    return base


def dep(src: str, on: str, dep_type: str, created: str = T0) -> dict[str, Any]:
    return {"issue_id": src, "depends_on_id": on, "type": dep_type, "created_at": created,
            "created_by": "x", "metadata": "{}"}


def synthetic() -> list[dict[str, Any]]:
    rows = [issue(f"bd-{t}", issue_type=t) for t in ("task", "bug", "feature", "chore",
                                                     "decision")]
    rows += [
        issue("bd-epic", issue_type="epic", description="The epic.", design="Use a queue.",
              notes="Ask ops.", acceptance_criteria="It works.", owner="o@example.com"),
        issue("bd-epic2", issue_type="epic"),
        issue("bd-child", created_by="alice", assignee="bob", labels=["x", "y"], dependencies=[
            dep("bd-child", "bd-epic2", "parent-child", "2026-01-03T00:00:00Z"),
            dep("bd-child", "bd-epic", "parent-child", "2026-01-02T00:00:00Z"),
            dep("bd-child", "bd-task", "blocks"),
            dep("bd-child", "bd-bug", "related"),
            dep("bd-child", "bd-feature", "discovered-from"),
            dep("bd-child", "bd-chore", "waits-for"),
            dep("bd-child", "bd-decision", "conditional-blocks"),
            dep("bd-child", "bd-q", "duplicates"),
            dep("bd-child", "bd-gone", "blocks"),
            dep("bd-child", "bd-agent", "blocks"),
            dep("bd-child", "bd-convoy", "blocks"),
            dep("bd-child", "bd-child", "blocks"),
        ]),
        issue("bd-orphan", parent="bd-gone"),
        issue("bd-fieldparent", parent="bd-epic"),
        issue("bd-q", issue_type="question"),
        issue("bd-closed", status="closed", closed_at="2026-01-05T00:00:00Z",
              close_reason="done"),
        issue("bd-closed2", status="closed", updated_at="2026-01-06T00:00:00Z"),
        issue("bd-open-with-closed-at", closed_at="2026-01-05T00:00:00Z", close_reason="x"),
        issue("bd-pinned", status="pinned", labels=["pinned"]),
        issue("bd-review", status="review"),
        issue("bd-hooked", status="hooked"),
        issue("bd-wip", status="in_progress"),
        issue("bd-blocked", status="blocked"),
        issue("bd-deferred", status="deferred"),
        issue("bd-tomb", status="tombstone"),
        issue("bd-convoy", issue_type="convoy", dependencies=[
            dep("bd-convoy", "bd-task", "tracks"), dep("bd-convoy", "bd-bug", "tracks"),
            dep("bd-convoy", "external:gt-1", "tracks"), dep("bd-convoy", "bd-agent", "tracks"),
        ]),
        issue("bd-convoy-done", issue_type="convoy", status="closed", close_reason="landed",
              closed_at="2026-01-04T00:00:00Z", dependencies=[
                  dep("bd-convoy-done", "bd-chore", "tracks")]),
    ]
    rows += [issue(f"bd-{t}", issue_type=t) for t in (
        "agent", "role", "rig", "slot", "message", "molecule", "gate", "event", "merge-request")]
    return rows


def write_export(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_every_mapping_rule(state_repo):
    export = write_export(state_repo / "issues.jsonl", synthetic())
    report = json.loads(ok("import", "--from", "beads", str(export), "--json"))
    assert report == {
        "source": str(export), "dry_run": False, "lines": 32,
        "imported": {"bug": 1, "chore": 1, "convoy": 2, "decision": 1, "epic": 2,
                     "feature": 1, "task": 15},
        "skipped": {t: 1 for t in ("agent", "event", "gate", "merge-request", "message",
                                   "molecule", "rig", "role", "slot")},
        "mapped": {
            "dep conditional-blocks → blocks": 1,
            "dep duplicates → related": 1,
            "second parent → related": 1,
            "status pinned → deferred + label pinned": 1,
            "status review → open + label beads-status:review": 1,
            "type question → task + label beads-type:question": 1,
        },
        "dropped": {
            "convoy tracks a skipped bead": 1,
            "convoy tracks an id not in the file": 1,
            "dep on a convoy": 1,
            "dep on a skipped bead": 1,
            "dep on an id not in the file": 1,
            "dep on itself": 1,
            "parent is an id not in the file": 1,
        },
        "bad": [],
        "written": {"created": 23},
        "cycles": [],
    }
    snap = Store.open().snapshot(fresh=True)
    beads, convoys = snap.beads, snap.convoys
    assert len(beads) == 21 and sorted(convoys) == ["bd-convoy", "bd-convoy-done"]
    for t in ("task", "bug", "feature", "chore", "decision"):
        assert beads[f"bd-{t}"].type == t
    child = beads["bd-child"]
    assert child.parent == "bd-epic"  # the earliest parent-child dep wins
    assert [(d.on, d.type) for d in child.deps] == [
        ("bd-bug", "related"), ("bd-chore", "waits-for"), ("bd-decision", "blocks"),
        ("bd-epic2", "related"), ("bd-feature", "discovered-from"), ("bd-q", "related"),
        ("bd-task", "blocks"),
    ]
    assert (child.created_by, child.assignee, child.labels) == ("alice", "bob", ["x", "y"])
    assert child.import_key == "beads:bd-child"
    epic = beads["bd-epic"]
    assert epic.description == "The epic.\n\n## Design\n\nUse a queue.\n\n## Notes\n\nAsk ops."
    assert (epic.acceptance, epic.created_by) == ("It works.", "o@example.com")
    assert beads["bd-orphan"].parent is None
    assert beads["bd-fieldparent"].parent == "bd-epic"
    assert (beads["bd-q"].type, beads["bd-q"].labels) == ("task", ["beads-type:question"])
    assert (beads["bd-closed"].closed_at, beads["bd-closed"].close_reason) == \
        ("2026-01-05T00:00:00Z", "done")
    assert beads["bd-closed2"].closed_at == "2026-01-06T00:00:00Z"
    stray = beads["bd-open-with-closed-at"]
    assert (stray.status, stray.closed_at, stray.close_reason) == ("open", None, None)
    assert (beads["bd-pinned"].status, beads["bd-pinned"].labels) == ("deferred", ["pinned"])
    assert (beads["bd-review"].status, beads["bd-review"].labels) == \
        ("open", ["beads-status:review"])
    for status in ("hooked", "blocked", "deferred"):
        assert beads[f"bd-{status}"].status == status
    assert beads["bd-wip"].status == "in_progress" and beads["bd-wip"].started_at == T0
    assert beads["bd-tomb"].status == "tombstone"
    assert (convoys["bd-convoy"].status, convoys["bd-convoy"].tracks) == \
        ("open", ["bd-bug", "bd-task"])
    done = convoys["bd-convoy-done"]
    assert (done.status, done.tracks, done.close_reason, done.closed_at) == \
        ("closed", ["bd-chore"], "landed", "2026-01-04T00:00:00Z")
    # Idempotent: the same file again writes nothing at all.
    before = ref_of(state_repo)
    again = json.loads(ok("import", "--from", "beads", str(export), "--json"))
    assert again["written"] == {"unchanged": 23}
    assert ref_of(state_repo) == before


def test_the_text_report(state_repo):
    rows = [issue("bd-1"), issue("bd-2", issue_type="agent"),
            issue("bd-3", status="pinned", dependencies=[dep("bd-3", "bd-x", "blocks")])]
    export = write_export(state_repo / "issues.jsonl", rows)
    assert ok("import", str(export)).splitlines() == [
        f"imported {export} (beads export, 3 lines)",
        "  imported: 2 (2 task)",
        "  written:  2 created",
        "  skipped:  1 (1 agent)",
        "  mapped:   1 (1 status pinned → deferred + label pinned)",
        "  dropped:  1 (1 dep on an id not in the file)",
    ]
    assert ok("import", str(export), "--quiet") == ""


def test_an_export_in_the_shapes_of_the_real_one(state_repo):
    """tests/data/beads-export.jsonl: hand-written, in the exact shapes of the beads project's
    own export (tests/data/README.md): molecules of ephemeral steps, agents and a message,
    pinned standing orders, convoys tracking external ids, deps on ids not in the file, a
    bead with two parents and one whose only parent is gone."""
    report = json.loads(ok("import", "--from", "beads", str(EXPORT), "--json"))
    assert report == {
        "source": str(EXPORT), "dry_run": False, "lines": 69,
        "imported": {"bug": 6, "chore": 3, "convoy": 2, "epic": 9, "feature": 3, "task": 41},
        "skipped": {"agent": 4, "message": 1},
        "mapped": {"second parent → related": 1,
                   "status pinned → deferred + label pinned": 3},
        "dropped": {"convoy tracks an id not in the file": 2,
                    "dep on an id not in the file": 7},  # 4 blocks, 2 parents, 1 discovered
        "bad": [], "written": {"created": 64}, "cycles": [],
    }
    snap = Store.open().snapshot(fresh=True)
    beads, convoys = snap.beads, snap.convoys
    assert (len(beads), sorted(convoys), snap.errors) == (62, ["hq-cv-a1b2c", "hq-cv-d3e4f"], [])
    assert Counter(b.status for b in beads.values()) == {
        "open": 25, "closed": 30, "hooked": 3, "in_progress": 1, "deferred": 3}
    assert Counter(d.type for b in beads.values() for d in b.deps) == {
        "blocks": 24, "discovered-from": 2, "related": 1}
    assert sum(1 for b in beads.values() if b.parent) == 39

    replay = beads["nb-k2v.3"]  # hooked work keeps its worker and gets a start time
    assert (replay.status, replay.assignee, replay.started_at, replay.parent) == (
        "in_progress", "notes/workers/amber", "2026-03-05T10:02:00Z", "nb-k2v")
    assert [(d.on, d.type) for d in replay.deps] == [("nb-k2v.1", "blocks"),
                                                    ("nb-k2v.2", "blocks")]
    assert replay.description == ("attached_molecule: nb-wisp-s6b2n\n"
                                  "attached_formula: mol-worker-work")
    assert [(d.on, d.type) for d in beads["nb-k2v.6"].deps] == [("nb-k2v.5", "blocks")]
    epic = beads["nb-k2v"]
    assert (epic.type, epic.status, epic.created_by) == ("epic", "open", "lead")
    assert epic.description.endswith("\n\n## Design\n\n## Approach\n\nAn operation log per "
                                     "device, replayed on reconnect; conflicts resolved per "
                                     "field, newest edit wins.")
    two_parents = beads["nb-q3h.2"]  # the earlier parent-child dep wins; the other is related
    assert two_parents.parent == "nb-q3h"
    assert [(d.on, d.type) for d in two_parents.deps] == [("nb-k2v", "related"),
                                                         ("nb-q3h.1", "blocks")]
    assert beads["nb-q3h.1"].parent == "nb-q3h"  # its older parent is not in the file
    orphan = beads["nb-d1s"]
    assert (orphan.parent, orphan.status, orphan.closed_at, orphan.close_reason) == (
        None, "closed", "2026-02-23T10:00:00Z", "burned: worker nuked")
    for pinned, kind in (("nb-triage", "task"), ("nb-deps", "task"), ("nb-wisp-p9c3d", "epic")):
        assert (beads[pinned].type, beads[pinned].status, beads[pinned].labels) == (
            kind, "deferred", ["pinned"])
    assert beads["nb-wisp-a5l0c"].labels == ["plugin:nightly-backup", "result:success",
                                             "type:plugin-run"]
    assert not any(b.startswith("nb-notes-worker-") or b == "hq-m4q" for b in beads)
    assert (convoys["hq-cv-a1b2c"].status, convoys["hq-cv-a1b2c"].tracks) == ("open", [])
    assert convoys["hq-cv-d3e4f"].tracks == ["nb-k2v.5", "nb-k2v.6"]

    assert [b["id"] for b in json.loads(ok("ready", "--json"))] == [
        "nb-7dw", "hq-x7k", "ops-4ar", "nb-q3h.1",
        "nb-wisp-f2w7j", "nb-wisp-0a7re", "nb-wisp-b3f8q", "nb-8qm"]
    assert sorted(b["id"] for b in json.loads(ok("blocked", "--json"))) == sorted(
        ["nb-k2v.5", "nb-k2v.6", "nb-q3h.2", "nb-q3h.3",
         "nb-wisp-3kd9s", "nb-wisp-6tq2b", "nb-wisp-9hv5m", "nb-wisp-c8n1x",  # worker patrol
         "nb-wisp-j5r0t", "nb-wisp-n8y3g",  # merge patrol
         "nb-wisp-e6j1v", "nb-wisp-h9n4z", "nb-wisp-k2r7c", "nb-wisp-n5u0g", "nb-wisp-q8x3l"])
    before = ref_of(state_repo)
    again = json.loads(ok("import", "--from", "beads", str(EXPORT), "--json"))
    assert again["written"] == {"unchanged": 64}
    assert ref_of(state_repo) == before


def test_malformed_lines_name_the_line_and_write_nothing(state_repo):
    rows = [issue("bd-1"), "{not json", issue("bd-2"), "[1, 2]", {"id": "bd-3"},
            issue("bd-1"), issue("bd-4", priority=9), issue("bad/id"),
            issue("bd-5", labels="x"), issue("bd-6", dependencies=[{"type": "blocks"}])]
    export = write_export(state_repo / "issues.jsonl", rows)
    before = ref_of(state_repo)
    res = convoy("import", str(export))
    assert (res.code, res.out) == (1, "")
    assert res.err == (f"error: {export}:2: not valid JSON (Expecting property name enclosed "
                       "in double quotes at column 2) (and 7 more bad line(s)); nothing was "
                       "written (--skip-bad imports the good lines)\n")
    assert ref_of(state_repo) == before
    res = convoy("import", str(export), "--skip-bad")
    assert res.code == 0, res.err
    assert res.lines[-9:] == [
        "  bad lines skipped: 8",
        f"    {export}:2: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
        f"    {export}:4: expected a JSON object",
        f"    {export}:5: 'title' is missing or empty",
        f"    {export}:6: duplicate id 'bd-1' (first on line 1)",
        f"    {export}:7: 'priority' must be an integer 0–4, got 9",
        f"    {export}:8: id 'bad/id' is not valid: use letters, digits, '-', '.' and '_' "
        "(no '/', no '..')",
        f"    {export}:9: 'labels' must be a list of strings",
        f"    {export}:10: dependencies[0] needs a string depends_on_id",
    ]
    assert sorted(Store.open().snapshot(fresh=True).beads) == ["bd-1", "bd-2"]


def test_an_id_taken_by_a_local_bead_is_a_conflict(state_repo):
    ok("bead", "create", "Mine", "--id", "bd-1")
    export = write_export(state_repo / "issues.jsonl", [issue("bd-0"), issue("bd-1")])
    before = ref_of(state_repo)
    res = convoy("import", str(export))
    assert res.err == (f"error: {export}:2: bead id 'bd-1' is already used by a bead that was "
                       "not imported from beads; nothing was written (--skip-bad imports the "
                       "good lines)\n")
    assert ref_of(state_repo) == before
    report = json.loads(ok("import", str(export), "--skip-bad", "--json"))
    assert report["written"] == {"created": 1} and report["bad"][0]["line"] == 2
    assert Store.open().snapshot(fresh=True).bead("bd-1").title == "Mine"


def test_reimport_of_a_newer_export_updates_but_keeps_local_changes(state_repo):
    export = state_repo / "issues.jsonl"
    write_export(export, [issue("bd-1"), issue("bd-2")])
    ok("import", str(export))
    ok("bead", "update", "bd-1", "--rig", "web")  # a gitconvoy-only field, bumps updated_at
    ok("bead", "update", "bd-2", "--title", "Renamed here")
    newer = "2999-01-01T00:00:00Z"
    write_export(export, [issue("bd-1", title="New title", updated_at=newer),
                          issue("bd-2", title="Old export title")])
    report = json.loads(ok("import", str(export), "--json"))
    assert report["written"] == {"kept (changed here since the export)": 1, "updated": 1}
    snap = Store.open().snapshot(fresh=True)
    assert (snap.bead("bd-1").title, snap.bead("bd-1").rig) == ("New title", "web")
    assert snap.bead("bd-2").title == "Renamed here"
    log = git("log", "--format=%s", "-1", "convoy/state")
    assert log == f"import {export} (beads): 1 objects written"


def test_dry_run_writes_nothing(state_repo):
    export = write_export(state_repo / "issues.jsonl", synthetic())
    before = ref_of(state_repo)
    res = convoy("import", str(export), "--dry-run")
    assert res.code == 0 and res.lines[0] == f"would import {export} (beads export, 32 lines)"
    assert res.lines[-1] == "dry run: nothing was written"
    assert ref_of(state_repo) == before


def test_cycles_in_an_export_are_imported_and_reported(state_repo):
    rows = [issue("bd-a", dependencies=[dep("bd-a", "bd-b", "blocks")]),
            issue("bd-b", dependencies=[dep("bd-b", "bd-a", "blocks")])]
    export = write_export(state_repo / "issues.jsonl", rows)
    lines = ok("import", str(export)).splitlines()
    assert lines[-1] == ("  warning: 1 dependency cycle(s) imported as they were, e.g. "
                         "bd-a → bd-b → bd-a: see 'git convoy dep cycles'")
    assert sorted(Store.open().snapshot(fresh=True).beads) == ["bd-a", "bd-b"]


_values = st.one_of(st.none(), st.booleans(), st.integers(-2, 6), st.text(max_size=8),
                    st.lists(st.text(max_size=4), max_size=2))
_ids = st.sampled_from(["bd-1", "bd-2", "bd-3", "bd-4", "x/y", "", "ext:1"])
_deps = st.lists(st.fixed_dictionaries(
    {"depends_on_id": _ids},
    optional={"type": st.sampled_from(["blocks", "parent-child", "tracks", "related",
                                       "conditional-blocks", "replies-to", 3]),
              "created_at": st.text(max_size=4)}), max_size=4)
_rows = st.lists(st.fixed_dictionaries(
    {"id": _ids, "title": st.one_of(st.text(max_size=6), st.integers())},
    optional={k: _values for k in ("status", "priority", "issue_type", "labels", "assignee",
                                   "created_at", "closed_at", "description", "parent")}
    | {"dependencies": st.one_of(_deps, _values),
       "issue_type": st.sampled_from(["task", "epic", "convoy", "agent", "question"]),
       "status": st.sampled_from(["open", "closed", "pinned", "weird", "hooked"])},
), max_size=8)


@settings(max_examples=150, deadline=None)
@given(_rows)
def test_any_export_maps_to_valid_state_or_reports_bad_lines(rows):
    """Whatever the file holds, the mapper never crashes and writes only valid objects."""
    export = parse_export([json.dumps(r) for r in rows], stamp=T0, actor="me")
    writes, _ = merge_into(export, {}, {})
    ids = {o.id for o in writes if isinstance(o, Bead)}
    for obj in writes:
        again = type(obj).from_dict(obj.to_dict(), "x.yaml")  # the state schema accepts it
        assert again.to_dict() == obj.to_dict()
        if isinstance(obj, Bead):
            assert obj.parent in ids | {None}
            assert all(d.on in ids and d.on != obj.id for d in obj.deps)
        else:
            assert isinstance(obj, Convoy) and set(obj.tracks) <= ids
    assert len(export.beads) + len(export.convoys) + sum(export.report.skipped.values()) \
        + len(export.report.bad) == sum(1 for r in rows if r)
