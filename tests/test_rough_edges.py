"""Rough edges a new user hit (issue 14, must-have 4): each fixed, each with its test."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import convoy, ok, ref_of


def test_a_non_utf8_argument_is_a_one_line_error_and_writes_nothing(state_repo):
    before = ref_of(state_repo)
    proc = subprocess.run([b"git-convoy", b"bead", b"create", b"bad\xff"], cwd=state_repo,
                          capture_output=True)
    assert proc.returncode == 1
    assert proc.stderr == b"error: argument 3 is not valid UTF-8: state files hold text only\n"
    assert proc.stdout == b"" and ref_of(state_repo) == before


def test_status_without_a_convoy_lists_the_open_ones(state_repo):
    a = ok("bead", "create", "one")
    b = ok("bead", "create", "two")
    first = ok("create", "First", a)
    second = ok("create", "Second", b)
    ok("close", second, "--force")
    assert ok("status") == ok("list")
    lines = ok("status").splitlines()
    assert len(lines) == 1 and lines[0].startswith(first) and "First" in lines[0]
    assert json.loads(ok("status", "--json")) == json.loads(ok("list", "--json"))
    res = convoy("status", "--format", "markdown")
    assert res.code == 2 and "--format markdown draws one convoy" in res.err


def test_diff_takes_json_like_every_read(state_repo):
    ok("bead", "create", "one")
    assert json.loads(ok("diff", "--json")) == json.loads(ok("diff", "--format", "json"))


def test_init_with_another_prefix_on_an_existing_state_says_so(state_repo):
    before = ref_of(state_repo)
    res = convoy("init", "--prefix", "zz")
    assert res.code == 1
    assert res.err.strip() == ("error: refs/heads/convoy/state already exists with prefix 't'; "
                               "init does not change it (new beads keep t-…): nothing was done")
    assert ref_of(state_repo) == before
    assert ok("init") == "refs/heads/convoy/state already exists (prefix t); nothing to do"


# --- input rules made consistent (issue 14) -------------------------------------------------


def test_a_title_is_one_line(state_repo):
    res = convoy("bead", "create", "first line\nsecond line")
    assert (res.code, res.err) == (1, "error: title must be one line (listings show one bead "
                                      "per line): put the rest in --description\n")
    bead = ok("bead", "create", "fine")
    res = convoy("bead", "update", bead, "--title", "a\rb")
    assert res.code == 1 and "must be one line" in res.err


@pytest.mark.parametrize("args", [
    ("rig", "add", "r2", "--target", "bad..name"),
    ("bead", "create", "x", "--target", "refs/../x"),
    ("create", "C", "--target", "-rf"),
    ("done", "--branch", "a b"),
])
def test_every_branch_name_typed_is_checked_by_gits_rules(state_repo, args):
    res = convoy(*args)
    assert res.code == 1 and "is not a valid branch name" in res.err, res
    assert res.err.count("\n") == 1


def test_a_state_naming_an_invalid_branch_is_refused_by_name(state_repo):
    from gitconvoy.errors import SchemaError
    from gitconvoy.state.model import Bead

    with pytest.raises(SchemaError) as info:
        Bead.from_dict({"id": "t-1", "title": "x", "branch": "--upload-pack=evil"},
                       "beads/t-1.yaml")
    assert "branch" in str(info.value) and "starts with '-'" in str(info.value)


def test_import_dry_run_shows_the_ids_the_import_creates(state_repo):
    doc = state_repo.parent / "prd.md"
    doc.write_text("# Plan\n\n## Data model\n\n- Tables\n\n## API (after: Data model)\n\n"
                   "- Endpoints\n")
    dry = json.loads(ok("import", str(doc), "--dry-run", "--json"))
    shown = sorted(b["id"] for b in dry["beads"])
    ok("import", str(doc))
    made = sorted(b["id"] for b in json.loads(ok("bead", "list", "--json")))
    assert shown == made, (shown, made)


def test_docs_link_only_to_files_in_the_repository():
    """The docs once sent readers to WORKFLOWS.md and DESIGN §…, which live outside it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", root / "SECURITY.md", *sorted((root / "docs").glob("*.md"))]
    missing = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target and not (page.parent / target).exists():
                missing.append(f"{page.name} -> {target}")
        missing += [f"{page.name} -> {m}" for m in re.findall(r"WORKFLOWS\.md|DESIGN §", text)]
    assert missing == []


def test_integration_status_of_a_landed_epic_says_it_landed(state_repo):
    from test_refinery_helpers import add_rig, worker_commit

    add_rig()
    epic = ok("bead", "create", "--type", "epic", "E")
    task = ok("bead", "create", "T", "--parent", epic)
    ok("integration", "create", epic)
    ok("create", "C", epic, task)
    ok("feed")
    worker_commit(state_repo, f"convoy/{task}", {"t.txt": "t\n"})
    ok("done", task)
    ok("refinery", "run")
    ok("integration", "land", epic)
    out = ok("integration", "status", epic)
    assert out.startswith("integration/") and f"landed: epic {epic} is closed" in out
