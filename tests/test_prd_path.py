"""The README's PRD path dispatches (issue 11, item 3): import → stage → launch, with the
integration branches the import planned cut at launch, parents first, and no --force."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import convoy, git, ok, ref_of

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "PRD.md"


@pytest.fixture
def planned(state_repo: Path) -> tuple[Path, str, str]:
    ok("rig", "add", "app", "--target", "main")
    shutil.copy(EXAMPLE, state_repo / "PRD.md")
    root = ok("import", "PRD.md", "--quiet")
    staged = json.loads(ok("stage", root, "--json"))
    return state_repo, root, staged["convoy"]


def by_title(title: str) -> dict:
    [bead] = [b for b in json.loads(ok("bead", "list", "--all", "--json"))
              if b["title"] == title]
    return bead


def test_stage_of_an_imported_prd_is_clean_and_names_the_branches_launch_cuts(state_repo):
    ok("rig", "add", "app", "--target", "main")
    shutil.copy(EXAMPLE, state_repo / "PRD.md")
    root = ok("import", "PRD.md", "--quiet")
    plan = json.loads(ok("stage", root, "--json"))
    assert plan["warnings"] == [] and plan["status"] == "staged_ready"
    assert sorted(p["branch"].split("-", 2)[0] for p in plan["planned_branches"]) == \
        ["integration/t"] * 4
    text = ok("stage", root)
    assert "Integration branches launch creates" in text and "missing-branch" not in text
    assert f"launch it with: git convoy launch {plan['convoy']}\n" in text + "\n"


def test_launch_cuts_planned_branches_parents_first_and_dispatches_wave_one(planned):
    repo, root, convoy_id = planned
    main = git("rev-parse", "main", cwd=repo)
    out = ok("launch", convoy_id)
    email, limits = by_title("Email delivery"), by_title("Rate limiting")
    assert limits["parent"] == email["id"]
    assert out.index(f"for {email['id']}") < out.index(f"for {limits['id']}")
    assert ref_of(repo, f"refs/heads/{email['integration_branch']}") == main
    assert by_title("Rate limiting")["target"] == email["integration_branch"]
    assert "✗" not in out
    token_table = by_title("Token table migration")
    assert token_table["status"] == "hooked"
    assert token_table["target"] == by_title("Token store")["integration_branch"]
    assert ref_of(repo, f"refs/heads/{token_table['branch']}") == main


def test_integration_false_plans_no_branches_and_warns_about_none(state_repo: Path):
    ok("rig", "add", "app", "--target", "main")
    text = EXAMPLE.read_text().replace("priority: 2\n", "priority: 2\nintegration: false\n", 1)
    (state_repo / "PRD.md").write_text(text)
    root = ok("import", "PRD.md", "--quiet")
    plan = json.loads(ok("stage", root, "--json"))
    assert plan["warnings"] == [] and plan["planned_branches"] == []
    out = ok("launch", plan["convoy"])
    assert "created integration/" not in out
    assert git("branch", "--list", "integration/*", cwd=state_repo) == ""
    assert by_title("Token table migration")["target"] == "main"


def test_integration_create_all_cuts_every_missing_branch_once(planned):
    repo, root, _ = planned
    out = ok("integration", "create", "--all", root)
    assert out.count("created integration/") == 4
    again = ok("integration", "create", "--all", root)
    assert again == f"every sub-epic under {root} already has its branch; nothing to do"
    bad = convoy("integration", "create", "--all", root, "--name", "x")
    assert bad.code == 2 and "--all takes no --base or --name" in bad.err


def test_a_launch_that_dispatches_nothing_exits_1_and_names_the_fix(planned, tmp_path: Path):
    repo, root, convoy_id = planned
    git("config", "convoy.rig.app.dispatch", str(tmp_path / "missing-script"), cwd=repo)
    res = convoy("launch", convoy_id)
    assert res.code == 1, res
    assert "✗" in res.out and "no dispatch succeeded" in res.err
