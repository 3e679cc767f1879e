"""Importing a Markdown PRD: the example's full tree, waves, re-import, dry run, and errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, ok, ref_of
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.importers.build import build_import
from gitconvoy.importers.outline import ImportFailure
from gitconvoy.importers.prd import parse_label, parse_prd
from gitconvoy.plan.waves import plan_waves
from gitconvoy.state.refnames import branch_problem as branch_name_problem
from gitconvoy.state.store import Store

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "PRD.md"
KEY = "examples/PRD.md"


def beads_by_key() -> dict[str, object]:
    snap = Store.open().snapshot(fresh=True)
    return {b.import_key: b for b in snap.beads.values() if b.import_key}


def shape(found: dict[str, object]) -> dict[str, tuple]:
    """Each bead as (type, status, priority, title, parent key, dep keys, branch?)."""
    key_of = {b.id: k.split("#", 1)[1] for k, b in found.items()}
    out = {}
    for key, b in found.items():
        branch = b.integration_branch
        if branch:
            assert branch == f"integration/{b.id}-{key.rsplit('/', 1)[-1].split('#')[-1]}"
        out[key.split("#", 1)[1]] = (
            b.type, b.status, b.priority, b.title,
            key_of.get(b.parent) if b.parent else None,
            sorted(key_of[d.on] for d in b.deps),
            bool(branch),
        )
    return out


EXPECTED = {
    "": ("epic", "open", 2, "Password reset by email", None, [], False),
    "token-store": ("epic", "open", 1, "Token store", "", [], True),
    "token-store/token-table": ("task", "open", 1, "Token table migration", "token-store",
                                [], False),
    "token-store/issue-and-verify-tokens": ("task", "open", 1, "Issue and verify tokens",
                                            "token-store", ["token-store/token-table"], False),
    "token-store/pick-the-hashing-library": ("decision", "closed", 1,
                                             "Pick the hashing library", "token-store", [],
                                             False),
    "email-delivery": ("epic", "open", 2, "Email delivery", "", [], True),
    "email-delivery/email-template": ("task", "open", 2, "Email template", "email-delivery",
                                      [], False),
    "email-delivery/send-the-reset-email": ("task", "open", 2, "Send the reset email",
                                            "email-delivery",
                                            ["token-store/issue-and-verify-tokens"], False),
    "email-delivery/rate-limiting": ("epic", "open", 2, "Rate limiting", "email-delivery", [],
                                     True),
    "email-delivery/rate-limiting/per-address-limit": (
        "feature", "open", 2, "Per-address limit", "email-delivery/rate-limiting",
        ["email-delivery/email-template"], False),
    "email-delivery/rate-limiting/per-ip-limit": ("task", "open", 2, "Per-IP limit",
                                                  "email-delivery/rate-limiting", [], False),
    "reset-page": ("epic", "open", 2, "Reset page", "", ["token-store"], True),
    "reset-page/reset-form": ("task", "open", 3, "Reset form", "reset-page", [], False),
    "reset-page/success-and-failure-messages": ("task", "open", 2,
                                                "Success and failure messages", "reset-page",
                                                ["reset-page/reset-form"], False),
}


def test_example_prd_imports_into_the_expected_tree(state_repo):
    out = json.loads(ok("import", str(EXAMPLE), "--json"))
    found = beads_by_key()
    assert shape(found) == EXPECTED
    root = found[f"{KEY}#"]
    assert out["root"] == root.id and root.parent is None
    assert out["counts"] == {"create": 14, "update": 0, "same": 0, "deleted": 0}
    assert {b["id"] for b in out["beads"]} == {b.id for b in found.values()}
    assert found[f"{KEY}#token-store/token-table"].id == "token-table"  # the {#anchor}
    assert found[f"{KEY}#token-store/issue-and-verify-tokens"].id == \
        f"{found[f'{KEY}#token-store'].id}.1"
    assert all(set(b.labels) == {"tour"} for b in found.values())
    assert root.description.startswith("Users who forget their password today")
    assert "## Background" in root.description and "- 12% of tickets" in root.description
    assert "## Non-goals" in root.description
    assert found[f"{KEY}#token-store/issue-and-verify-tokens"].description == \
        "Tokens are HMAC-signed; verification is constant time."
    assert found[f"{KEY}#token-store"].description == \
        "A signed, single-use token with a 30-minute lifetime."
    assert found[f"{KEY}#token-store/pick-the-hashing-library"].closed_at
    log = git("log", "--format=%s", "convoy/state").splitlines()
    assert len(log) == 2 and log[0].startswith(f"import {EXAMPLE}: root {root.id}")


def test_example_prd_stages_into_the_expected_waves(state_repo):
    ok("rig", "add", "web", "--target", "main")
    root = ok("import", str(EXAMPLE), "--quiet")
    staged = json.loads(ok("stage", root, "--json"))
    found = beads_by_key()
    key_of = {b.id: k.split("#", 1)[1] for k, b in found.items()}
    waves = [sorted(key_of[b] for b in wave) for wave in staged["waves"]]
    assert waves == [
        ["email-delivery/email-template", "email-delivery/rate-limiting/per-ip-limit",
         "token-store/token-table"],
        ["email-delivery/rate-limiting/per-address-limit",
         "token-store/issue-and-verify-tokens"],
        ["email-delivery/send-the-reset-email", "reset-page/reset-form"],
        ["reset-page/success-and-failure-messages"],
    ]
    assert staged["gated"] == []  # stage --json lists gated beads (status --json maps them)
    assert staged["errors"] == []


def test_reimport_is_idempotent_and_updates_in_place(state_repo, tmp_path):
    doc = tmp_path / "PRD.md"
    shutil.copy(EXAMPLE, doc)
    root = ok("import", str(doc), "--quiet")
    first = beads_by_key()
    before = ref_of(state_repo)
    again = convoy("import", str(doc))
    assert again.code == 0
    assert again.lines == [root, f"imported {doc}: 14 beads (0 new, 0 updated, 14 unchanged)"]
    assert ref_of(state_repo) == before  # nothing changed: no commit at all

    text = doc.read_text().replace("- Email template\n",
                                   "- Email template\n  Plain text and HTML.\n- Bounce handling\n")
    doc.write_text(text.replace("- Per-IP limit\n", ""))
    res = convoy("import", str(doc))
    assert res.lines[0] == root
    assert res.lines[1] == f"imported {doc}: 14 beads (1 new, 1 updated, 12 unchanged)"
    stale = first[f"{KEY}#email-delivery/rate-limiting/per-ip-limit"].id
    assert res.lines[2].startswith("note: 1 bead(s) imported earlier") and stale in res.lines[2]
    second = beads_by_key()
    for key, bead in first.items():  # same ids for the same keys
        assert second[key].id == bead.id
    template = second[f"{KEY}#email-delivery/email-template"]
    assert template.description == "Plain text and HTML."
    bounce = second[f"{KEY}#email-delivery/bounce-handling"]
    assert bounce.parent == template.parent and bounce.id == f"{template.parent}.3"


def test_reimport_keeps_local_state_and_deps_added_by_hand(state_repo):
    ok("import", str(EXAMPLE), "--quiet")
    found = beads_by_key()
    task = found[f"{KEY}#email-delivery/email-template"]
    other = ok("bead", "create", "Unrelated work")
    ok("dep", "add", task.id, other)
    ok("bead", "update", task.id, "--status", "in_progress", "--label", "mine")
    res = convoy("import", str(EXAMPLE))
    assert res.code == 0 and "14 unchanged" in res.lines[1]
    after = Store.open().snapshot(fresh=True).bead(task.id)
    assert after.status == "in_progress" and "mine" in after.labels
    assert [d.on for d in after.deps] == [other]


def test_reimport_leaves_a_bead_deleted_here_deleted(state_repo):
    ok("import", str(EXAMPLE), "--quiet")
    gone = beads_by_key()[f"{KEY}#reset-page/reset-form"]
    ok("bead", "delete", gone.id)
    res = convoy("import", str(EXAMPLE))
    assert res.code == 0
    assert res.lines[1] == (f"imported {EXAMPLE}: 14 beads (0 new, 0 updated, 13 unchanged, "
                            "1 deleted here and left alone)")
    assert Store.open().snapshot(fresh=True).bead(gone.id).status == "tombstone"


def test_dry_run_shows_tree_and_waves_and_writes_nothing(state_repo):
    before = ref_of(state_repo)
    res = convoy("import", str(EXAMPLE), "--dry-run")
    assert res.code == 0, res.err
    assert ref_of(state_repo) == before
    assert res.lines[0] == f"would import {EXAMPLE}: 14 beads (14 new, 0 updated, 0 unchanged)"
    assert "Tree (+ new, ~ updated, = unchanged, x deleted here)" in res.lines
    tree = res.lines[res.lines.index("Tree (+ new, ~ updated, = unchanged, x deleted here)") + 1:]
    assert tree[0].startswith("  + t-") and tree[0].endswith("epic  P2  Password reset by email")
    assert "      + token-table  task  P1  Token table migration" in tree
    assert any("Reset page  [after token-store; branch integration/t-" in x for x in tree)
    assert "  wave 4 (1):" in res.lines
    assert res.lines[-1] == "dry run: nothing was written"
    as_json = json.loads(ok("import", str(EXAMPLE), "--dry-run", "--json"))
    assert as_json["dry_run"] is True and len(as_json["waves"]) == 4
    assert ref_of(state_repo) == before


def test_import_from_a_subfolder_uses_the_same_key(state_repo, chdir):
    docs = state_repo / "docs"
    docs.mkdir()
    shutil.copy(EXAMPLE, docs / "PRD.md")
    (docs / "PRD.md").write_text((docs / "PRD.md").read_text().replace("key: examples/PRD.md\n",
                                                                       ""))
    root = ok("import", "docs/PRD.md", "--quiet")
    chdir(docs)
    assert ok("import", "PRD.md", "--quiet") == root
    assert Store.open().snapshot().bead(root).import_key == "docs/PRD.md#"
    assert len(beads_by_key()) == 14


def test_stage_of_the_quiet_import_end_to_end(state_repo):
    """The workflow-B one-liner, through git and a shell, as a user types it."""
    subprocess.run(["git", "convoy", "rig", "add", "web"], check=True, capture_output=True)
    shutil.copy(EXAMPLE, state_repo / "PRD.md")
    proc = subprocess.run("git convoy stage $(git convoy import PRD.md --quiet)", shell=True,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "wave 4" in proc.stdout
    snap = Store.open().snapshot(fresh=True)
    assert len(snap.convoys) == 1


# --- errors: one line naming file, line and reference; nothing written ----------------------

BAD_DOCS = [
    ("# Root\n\n## A\n\n- one (after: nowhere)\n",
     "doc.md:5: unknown ref 'nowhere' in 'one': expected a slug, a title or a {#custom-id} "
     "of this document, or an existing bead id"),
    ("# Root\n\n## A (after: B)\n\n- one\n\n## B (after: A)\n\n- two\n",
     "doc.md:3: dependency cycle: a (line 3) → b (line 7) → a (line 3)"),
    ("# Root\n\n## A\n\n- one (after: two)\n- two (after: one)\n",
     "doc.md:5: dependency cycle: a/one (line 5) → a/two (line 6) → a/one (line 5)"),
    ("# Root\n\n## A\n\n- Write tests\n- Write  tests!\n",
     "doc.md:6: duplicate slug 'write-tests' under 'A' (also line 5): give one of them a "
     "{#custom-id} or another title"),
    ("# Root\n\n## A\n\n- one {#x}\n\n## B\n\n- two {#x}\n",
     "doc.md:9: duplicate id 'x' (also on line 5)"),
    ("# Root\n\n## A\n\n- [ ] \n", "doc.md:5: empty task title"),
    ("# Root\n\n## {#x}\n\n- one\n", "doc.md:3: empty heading title"),
    ("---\nstrict: true\n---\n# Root\n\n- stray\n\n## A\n\n- one\n",
     "doc.md:6: task 'stray' is outside any '##' section (strict mode)"),
    ("# Root\n\n## A\n\n- same\n\n## B\n\n- same\n- three (after: same)\n",
     "doc.md:10: ambiguous ref 'same' in 'three': it matches lines 5, 9; use the slug path "
     "(section/task) or a {#custom-id}"),
    ("# Root\n\n## A\n\n- one (after: one)\n", "doc.md:5: 'one' cannot depend on itself"),
    ("# Root\n\n# Other\n", "doc.md:3: a second '#' title ('Other'): a PRD has one root title "
     "(line 1); use '##' for sections"),
    ("## A\n\n- one\n", "doc.md:1: section 'A' comes before the '#' title"),
    ("no title here\n", "doc.md: no '#' title: a PRD starts with '# <root epic title>'"),
    ("# Root\n\n## A {foo}\n", "doc.md:3: cannot read 'foo' in {foo}: expected #id, .type or "
     "key=value"),
    ("# Root\n\n## A\n\n- one {priority=9}\n",
     "doc.md:5: priority must be 0 (highest) to 4, got '9'"),
    ("# Root\n\n## A {integration=bad..name}\n\n- one\n",
     "doc.md:3: integration branch 'bad..name' is not a valid branch name: it contains "
     "'..'"),
    ("---\nprefix: [x\n---\n# Root\n",
     "doc.md:3: not valid YAML (did not find expected ',' or ']')"),
    ("---\nsprint: 4\n---\n# Root\n",
     "doc.md:2: unknown front matter key 'sprint': expected one of integration, "
     "integration_template, key, labels, prefix, priority, rig, strict, target, type"),
    ("---\nprefix: a/b\n---\n# Root\n",
     "doc.md: prefix 'a/b' is not valid: use letters, digits, '-', '.' and '_'"),
    ("# Root\n\n## A\n\n- one {#bad/id}\n", "doc.md:5: id 'bad/id' is not valid: use "
     "letters, digits, '-', '.' and '_' (no '/', no '..')"),
]


@pytest.mark.parametrize(("text", "message"), BAD_DOCS)
def test_bad_documents_fail_with_one_line_and_write_nothing(state_repo, text, message):
    (state_repo / "doc.md").write_text(text)
    before = ref_of(state_repo)
    res = convoy("import", "doc.md")
    assert (res.code, res.err, res.out) == (1, f"error: {message}\n", "")
    assert ref_of(state_repo, STATE_REF) == before


def test_anchor_colliding_with_an_existing_bead_is_refused(state_repo):
    ok("bead", "create", "Elsewhere", "--id", "taken")
    (state_repo / "doc.md").write_text("# Root\n\n## A {#taken}\n\n- one\n")
    before = ref_of(state_repo)
    res = convoy("import", "doc.md")
    assert res.err == ("error: doc.md:3: id 'taken' is already used by a bead that this "
                       "document did not create\n")
    assert ref_of(state_repo) == before


def test_refs_may_name_existing_beads_and_unreadable_files_fail_cleanly(state_repo):
    other = ok("bead", "create", "Outside work")
    (state_repo / "doc.md").write_text(f"# Root\n\n## A\n\n- one (after: {other})\n")
    ok("import", "doc.md")
    one = beads_by_key()["doc.md#a/one"]
    assert [d.on for d in one.deps] == [other]
    assert convoy("import", "missing.md").err == \
        "error: cannot read missing.md: No such file or directory\n"
    (state_repo / "bin.md").write_bytes(b"# Root\n\xff\n")
    assert convoy("import", "bin.md").err == "error: bin.md:2: is not valid UTF-8\n"
    assert convoy("import", "notes.txt").err == \
        "error: cannot tell the format of notes.txt: use --from prd, plan or beads\n"


# --- the parser on its own -------------------------------------------------------------------


def test_markers_anchors_and_attributes():
    label = parse_label("Write the CAS (after: parse, b; c) {#cas .bug priority=1}", "d", 1)
    assert (label.title, label.anchor, label.classes, label.attrs, label.refs) == \
        ("Write the CAS", "cas", ["bug"], {"priority": "1"}, ["parse", "b", "c"])
    label = parse_label("Deploy — blocked by: build; depends on: Config loader", "d", 1)
    assert (label.title, label.refs) == ("Deploy", ["build", "Config loader"])
    label = parse_label("Write thereafter: notes", "d", 1)
    assert (label.title, label.refs) == ("Write thereafter: notes", [])
    with pytest.raises(ImportFailure, match="d:4: 'after:' names no reference"):
        parse_label("x (after: )", "d", 4)


def test_prd_structure_rules():
    text = (
        "---\nprefix: web\nrig: frontend\ntarget: develop\ntype: chore\npriority: 3\n"
        "integration: false\n---\n"
        "Badge text above the title is ignored.\n"
        "# Root\n\nRoot text.\n\n"
        "- stray task\n\n"
        "## A\n\nA text.\n\n"
        "1. numbered {.bug}\n"
        "   continuation line\n"
        "   - nested bullet stays in the description\n"
        "2) second\n"
        "* [X] done already\n\n"
        "Text after the list belongs to A.\n\n"
        "```\n- not a task\n## not a heading\n```\n\n"
        "### Deep {rig=backend}\n\n- deep task\n"
    )
    outline = parse_prd(text, "d.md")
    result = build_import(outline, {}, prefix=outline.prefix or "x", actor="me", stamp="T")
    rows = [(p.node.key, p.bead.type, p.bead.status, p.bead.priority, p.bead.rig,
             p.bead.target, p.bead.integration_branch) for p in result.items]
    assert rows == [
        ("", "epic", "open", 3, "frontend", "develop", None),
        ("stray-task", "chore", "open", 3, "frontend", "develop", None),
        ("a", "epic", "open", 3, "frontend", "develop", None),
        ("a/numbered", "bug", "open", 3, "frontend", "develop", None),
        ("a/second", "chore", "open", 3, "frontend", "develop", None),
        ("a/done-already", "chore", "closed", 3, "frontend", "develop", None),
        ("a/deep", "epic", "open", 3, "backend", "develop", None),
        ("a/deep/deep-task", "chore", "open", 3, "backend", "develop", None),
    ]
    by_key = {p.node.key: p.bead for p in result.items}
    assert by_key[""].description == "Root text."
    assert by_key[""].id.startswith("web-")
    assert by_key["a/numbered"].description == \
        "continuation line\n- nested bullet stays in the description"
    assert by_key["a"].description == (
        "A text.\n\nText after the list belongs to A.\n\n```\n- not a task\n"
        "## not a heading\n```"
    )


def test_branch_name_rules():
    assert branch_name_problem("integration/cv-1a2b-token-store") is None
    for bad in ("", "-x", "a b", "a..b", "a/", "a.", "a/.hidden", "x.lock/y", "a@{b", "a:b"):
        assert branch_name_problem(bad), bad


# --- property: any acyclic generated PRD keeps every dep, and waves respect every edge -------

@st.composite
def generated_prds(draw: st.DrawFn) -> tuple[str, dict[str, set[str]]]:
    """A PRD whose tasks may wait for any earlier task (so it is acyclic) by slug path."""
    sections = draw(st.integers(1, 4))
    lines = ["# Root", ""]
    earlier: list[str] = []
    expected: dict[str, set[str]] = {}
    for s in range(sections):
        lines += [f"## Section {s}", ""]
        for t in range(draw(st.integers(1, 4))):
            key = f"section-{s}/task-{s}-{t}"
            refs = sorted(set(draw(st.lists(st.sampled_from(earlier), max_size=3)))) \
                if earlier else []
            marker = f" (after: {', '.join(refs)})" if refs else ""
            lines.append(f"{draw(st.sampled_from(['-', '*', '1.', '- [ ]']))} Task {s}-{t}{marker}")
            expected[key] = set(refs)
            earlier.append(key)
        lines.append("")
    return "\n".join(lines), expected


@settings(max_examples=60, deadline=None)
@given(generated_prds())
def test_generated_prds_keep_every_dep_and_waves_respect_them(doc):
    text, expected = doc
    result = build_import(parse_prd(text, "g.md"), {}, prefix="g", actor="me", stamp="T")
    key_of = {p.bead.id: p.node.key for p in result.items}
    tasks = {p.node.key: p.bead for p in result.items if p.bead.type == "task"}
    assert {k: {key_of[d.on] for d in b.deps} for k, b in tasks.items()} == expected
    beads = {p.bead.id: p.bead for p in result.items}
    waves = plan_waves(beads, list(beads))
    wave_of = {b: n for n, wave in enumerate(waves.waves) for b in wave}
    assert set(wave_of) == {b.id for b in tasks.values()}
    for bead in tasks.values():
        for dep in bead.deps:
            assert wave_of[bead.id] > wave_of[dep.on]


def test_integration_create_cuts_the_branch_import_planned(state_repo):
    ok("rig", "add", "web")
    ok("import", str(EXAMPLE), "--quiet")
    store_epic = beads_by_key()[f"{KEY}#token-store"]
    planned = store_epic.integration_branch
    assert git("branch", "--list", planned) == ""
    ok("integration", "create", store_epic.id)
    assert git("rev-parse", f"refs/heads/{planned}") == git("rev-parse", "main")
    after = Store.open().snapshot(fresh=True).bead(store_epic.id)
    assert (after.integration_branch, after.base_commit) == (planned, git("rev-parse", "main"))
    res = convoy("integration", "create", store_epic.id)
    assert res.code == 1 and "already has integration branch" in res.err


def test_concurrent_imports_of_one_document_never_duplicate(state_repo):
    """Lost races re-read the state, find the other writer's beads by key, and add nothing."""
    shutil.copy(EXAMPLE, state_repo / "PRD.md")
    procs = [subprocess.Popen(["git", "convoy", "import", "PRD.md", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    roots = set()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        roots.add(out.strip())
    assert len(roots) == 1
    assert len(beads_by_key()) == 14
    assert len(Store.open().snapshot(fresh=True).beads) == 14
    log = git("log", "--format=%s", "convoy/state").splitlines()
    assert sum(1 for line in log if line.startswith("import ")) == 1


_pieces = st.sampled_from([
    "# Root", "## A", "## B {#b}", "### C (after: a)", "## D {.prose}", "- task", "- task two",
    "* [x] done", "1. first (after: task)", "   indented", "- x (after: nowhere)", "```",
    "text", "", "---", "prefix: p", "- {#b}", "## A", "- y {priority=9}", "#### deep",
    "- z (blocked by: A, b)", "- [ ]", "## (after: )", "~~~", "- w {.bug rig=r}",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_pieces, max_size=14))
def test_any_markdown_parses_or_fails_with_a_located_message(lines):
    text = "\n".join(lines)
    try:
        result = build_import(parse_prd(text, "f.md"), {}, prefix="f", actor="me", stamp="T")
    except ImportFailure as exc:
        assert exc.message.startswith("f.md") and "\n" not in exc.message
        return
    for item in result.items:
        again = type(item.bead).from_dict(item.bead.to_dict(), "x.yaml")
        assert again.to_dict() == item.bead.to_dict()
