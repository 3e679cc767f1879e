"""Formulas: parsing with one-line errors, {{var}} substitution, and the resolution order
project (committed on the branch) → user folder → built-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import convoy, git, ok

from gitconvoy.errors import ConvoyError
from gitconvoy.git import formulas
from gitconvoy.state.store import Store

NAME = "mol-integration-review"

SMALL = """
formula = "{name}"
description = "{desc}"
version = 2

[vars.who]
description = "someone"
required = true

[vars.where]
default = "here"

[[steps]]
id = "one"
title = "Greet {{{{who}}}} {{{{where}}}}"
run = "echo {{{{who}}}}"

[[steps]]
id = "two"
needs = ["one"]
"""


def small(name: str = "greet", desc: str = "from somewhere") -> str:
    return SMALL.format(name=name, desc=desc)


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "xdg" / "gitconvoy" / "formulas"
    folder.mkdir(parents=True)
    return folder


def commit_project_formula(repo: Path, name: str, text: str) -> None:
    folder = repo / ".convoy" / "formulas"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.formula.toml").write_text(text)
    git("add", ".convoy", cwd=repo)
    git("commit", "-q", "-m", f"formula {name}", cwd=repo)


def test_the_builtin_review_formula_loads_and_binds(user_dir):
    found = formulas.load(NAME)
    assert found.origin == "builtin" and found.type == "review"
    assert [s.id for s in found.steps] == ["diff", "conflict-markers", "tests", "check"]
    assert {n for n, v in found.vars.items() if v.required} == {"epic", "branch", "base", "tip"}
    bound = formulas.bind(found, {"epic": "e-1", "branch": "integration/x", "base": "main",
                                  "tip": "abc"})
    assert bound.description == "Review of integration/x (epic e-1) before it lands on main"
    assert bound.steps[0].title == "Full diff of integration/x against main"


def test_substitution_quotes_run_and_uses_defaults(user_dir):
    parsed = formulas.parse(small(), "x.formula.toml")
    bound = formulas.bind(parsed, {"who": "a b; rm -rf /"})
    assert bound.steps[0].title == "Greet a b; rm -rf / here"
    assert bound.steps[0].run == "echo 'a b; rm -rf /'"
    assert bound.steps[1].needs == ["one"] and bound.version == 2


def test_missing_required_var_and_undeclared_placeholder(user_dir):
    parsed = formulas.parse(small(), "x.formula.toml")
    with pytest.raises(ConvoyError, match=r"^x.formula.toml: var 'who' is required"):
        formulas.bind(parsed, {})
    with pytest.raises(ConvoyError, match=r"^f.toml:4: steps\[0\]: key 'title' uses "
                                          r"\{\{nope\}\}, which is not declared"):
        formulas.parse('formula = "f"\n[[steps]]\nid = "s"\ntitle = "{{nope}}"\n', "f.toml")


@pytest.mark.parametrize(("text", "message"), [
    ('formula = "f"\ncolour = "red"\n', "f.toml:2: unknown key 'colour'"),
    ('formula = "f"\n[vars.v]\nrequire = true\n', "f.toml:3: vars.v: unknown key 'require'"),
    ('formula = "f"\n[[steps]]\nid = "a"\nrunn = "x"\n',
     "f.toml:4: steps[0]: unknown key 'runn'"),
    ('description = "no name"\n', "f.toml:1: key 'formula' is required"),
    ('formula = "does not"\n', "f.toml:1: key 'formula' 'does not' is not a valid name"),
    ('formula = "f"\n\ntype = "dance"\n',
     "f.toml:3: key 'type' expected one of workflow, review"),
    ('formula = "f"\n[[steps]]\nid = "a"\nneeds = ["b"]\n',
     "f.toml:4: steps[0]: key 'needs' names unknown step 'b'"),
    ('formula = "f"\n[[steps]]\nid = "a"\n[[steps]]\nid = "a"\n',
     "f.toml:5: steps[1]: key 'id' 'a' is used twice"),
    ('formula = "f"\n[[steps]]\nid = "has space"\n',
     "f.toml:3: steps[0]: key 'id' 'has space' is not a valid step id"),
    ('formula = "f"\n[vars."a b"]\n', "f.toml:2: vars.a b: 'a b' is not a valid var name"),
    ('formula = "f"\n[[steps]]\nid = "a"\ndescription = """\nneeds = 1\n"""\n'
     'needs = ["b"]\n[[steps]]\nid = "b"\nneeds = ["a"]\n',
     "f.toml:7: steps[0]: key 'needs' makes a cycle: a → b → a"),
    ('formula = "f"\n[[steps]]\nid = "a"\nneeds = ["a"]\n',
     "f.toml:4: steps[0]: key 'needs' makes a cycle: a → a"),
    ('formula = \n', "f.toml:1: not valid TOML"),
])
def test_bad_formulas_are_one_line_errors_naming_file_and_line(text, message):
    with pytest.raises(ConvoyError) as caught:
        formulas.parse(text, "f.toml")
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message


def test_resolution_order_project_then_user_then_builtin(state_repo, user_dir):
    store = Store.open()
    assert formulas.load(NAME, store, "main").origin == "builtin"
    (user_dir / f"{NAME}.formula.toml").write_text(small(NAME, "user's"))
    found = formulas.load(NAME, store, "main")
    assert (found.origin, found.description) == ("user", "user's")
    commit_project_formula(state_repo, NAME, small(NAME, "project's"))
    found = formulas.load(NAME, Store.open(), "main")
    assert (found.origin, found.description) == ("project", "project's")
    assert found.source == f"main:.convoy/formulas/{NAME}.formula.toml"
    # another branch without the file falls back to the user's
    git("branch", "other", "HEAD~1", cwd=state_repo)
    assert formulas.load(NAME, Store.open(), "other").origin == "user"
    listed = {n: v.origin for n, v in formulas.visible(Store.open(), "main").items()}
    assert listed[NAME] == "project"


def test_a_file_named_for_another_formula_is_refused(state_repo, user_dir):
    (user_dir / "greet.formula.toml").write_text(small("other-name"))
    with pytest.raises(ConvoyError, match="key 'formula' is 'other-name', expected 'greet'"):
        formulas.load("greet")
    with pytest.raises(ConvoyError, match="formula 'nothing' not found"):
        formulas.load("nothing")


def test_formula_commands(state_repo, user_dir):
    (user_dir / "greet.formula.toml").write_text(small())
    listed = json.loads(ok("formula", "list", "--json"))
    assert {"formula": "greet", "origin": "user", "valid": True, "error": None,
            "source": str(user_dir / "greet.formula.toml")} in listed
    assert any(f["formula"] == NAME and f["origin"] == "builtin" for f in listed)
    shown = json.loads(ok("formula", "show", "greet", "--json"))
    assert shown["vars"]["who"]["required"] is True and shown["steps"][1]["needs"] == ["one"]
    text = ok("formula", "show", NAME)
    assert "step conflict-markers: No conflict-marker residue (needs diff)" in text
    res = convoy("formula", "show", "nothing")
    assert res.code == 1 and res.err.startswith("error: formula 'nothing' not found")
    (user_dir / "broken.formula.toml").write_text('formula = "broken"\nextra = 1\n')
    res = convoy("formula", "show", "broken")
    assert res.code == 1 and res.err.count("\n") == 1
    assert "broken.formula.toml:2: unknown key 'extra'" in res.err


def test_a_project_formula_overrides_the_review(state_repo, user_dir):
    """A project's own review formula, committed on main, drives the gate: its shell step's
    failure is a finding; the built-in checks it leaves out are not run."""
    from test_refinery_helpers import add_rig, worker_commit

    commit_project_formula(state_repo, NAME, """
formula = "mol-integration-review"
type = "review"
[vars.branch]
required = true
[[steps]]
id = "no-forbidden"
title = "No forbidden file on {{branch}}"
run = "test ! -e forbidden.txt"
""")
    add_rig()
    git("config", "convoy.review", "true", cwd=state_repo)
    epic = ok("bead", "create", "--type", "epic", "Own review")
    ok("integration", "create", epic)
    branch = json.loads(ok("bead", "show", epic, "--json"))["integration_branch"]
    child = ok("bead", "create", "c", "--parent", epic)
    worker_commit(state_repo, branch, {"forbidden.txt": "<<<<<<< x\n"}, "bad")
    ok("bead", "close", child)
    ok("review", "run", epic)
    review = Store.open().snapshot().objects["reviews"]
    [rv] = list(review.values())
    assert rv.formula == f"{NAME} (project)"
    assert len(rv.findings) == 1
    assert rv.findings[0].startswith("no-forbidden: check failed (exit 1)")


LOOP = 'formula = "loop"\n[[steps]]\nid = "a"\nneeds = ["a"]\n'


def test_list_marks_invalid_files_and_check_fails_on_them(state_repo, user_dir):
    (user_dir / "greet.formula.toml").write_text(small())
    (user_dir / "loop.formula.toml").write_text(LOOP)
    lines = {line.split()[0]: line for line in ok("formula", "list").splitlines()}
    assert "INVALID" not in lines["greet"]
    assert "INVALID: " in lines["loop"] and "loop.formula.toml:4: steps[0]: key 'needs' " \
        "makes a cycle: a → a" in lines["loop"]
    listed = {f["formula"]: f for f in json.loads(ok("formula", "list", "--json"))}
    assert listed["loop"]["valid"] is False and "makes a cycle" in listed["loop"]["error"]
    assert listed["greet"]["valid"] is True and listed[NAME]["valid"] is True

    res = convoy("formula", "check")
    assert res.code == 1
    checked = {line.split()[1].rstrip(":"): line for line in res.out.splitlines()}
    assert checked["loop"].startswith("BAD loop: ") and checked["greet"].startswith("ok ")
    assert ok("formula", "check", "greet", NAME).count("\n") == 1
    res = convoy("formula", "check", "nothing")
    assert res.code == 1 and "BAD nothing: formula 'nothing' not found" in res.out


def test_check_validates_each_rigs_default_formula(state_repo, user_dir):
    from test_refinery_helpers import add_rig

    add_rig()
    git("config", "convoy.rig.app.formula", NAME, cwd=state_repo)
    res = convoy("formula", "check", "--json")
    assert res.code == 1
    [row] = [r for r in json.loads(res.out) if r["used_by"] == "app"]
    assert row["valid"] is False and "is a review formula" in row["error"]
    git("config", "convoy.rig.app.formula", "mol-polecat-work", cwd=state_repo)
    assert convoy("formula", "check").code == 0
