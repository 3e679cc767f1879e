"""Stage options and slinging an epic, as a user runs them (issue 13, item 5):
`stage EPIC --infer-blocks / --max-depth N / --validate` and `sling EPIC`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import convoy, git, git_convoy, ok, ref_of

STAMP = "2026-03-01T10:00:0{}.000000Z"


@pytest.fixture
def plan(state_repo: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Rig `app`; epic Root with sub-epics A, B, C created in that order (one second
    apart), a task under each, and a deeper sub-epic D under A with a task."""
    ok("rig", "add", "app", "--target", "main", "--capacity", "5")
    ids: dict[str, str] = {}

    def made(name: str, *args: str, second: int) -> str:
        monkeypatch.setenv("CONVOY_NOW", STAMP.format(second))
        ids[name] = ok("bead", "create", name, *args)
        return ids[name]

    root = made("Root", "--type", "epic", "--acceptance", "search answers in 100 ms", second=0)
    for n, name in enumerate("ABC", 1):
        made(name, "--type", "epic", "--parent", root, second=n)
        made(f"task {name}", "--parent", ids[name], second=n)
    made("D", "--type", "epic", "--parent", ids["A"], second=5)
    made("task D", "--parent", ids["D"], second=5)
    monkeypatch.delenv("CONVOY_NOW")
    return ids


def deps_of(bead: str) -> list[dict]:
    return json.loads(ok("dep", "list", bead, "--json"))["depends_on"]


def waves(*args: str) -> list[list[str]]:
    return json.loads(ok("stage", *args, "--json"))["waves"]


def refused(*args: str) -> str:
    """A command that must fail with one line, having written nothing: that line."""
    before = ref_of(Path.cwd())
    res = convoy(*args)
    assert res.code == 1, res.out + res.err
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err, res.err
    assert ref_of(Path.cwd()) == before
    return res.err.strip()


# --- --infer-blocks ------------------------------------------------------------------


def test_infer_blocks_chains_sub_epics_in_creation_order(plan: dict[str, str]) -> None:
    got = waves(plan["Root"], "--infer-blocks")
    assert got == [sorted([plan["task A"], plan["task D"]]), [plan["task B"]], [plan["task C"]]]
    assert {"on": plan["A"], "type": "blocks", "inferred": True, "status": "open"} \
        in deps_of(plan["B"])
    assert {"on": plan["B"], "type": "blocks", "inferred": True, "status": "open"} \
        in deps_of(plan["C"])
    assert not any(d.get("inferred") for d in deps_of(plan["A"]))  # the first waits for none
    listed = ok("dep", "list", plan["B"])
    assert f"{plan['B']} → {plan['A']}  (blocks, inferred by stage, open)" in listed
    assert f"depends   {plan['A']} (blocks, inferred by stage)" in ok("bead", "show", plan["B"])


def test_a_restage_without_the_flag_removes_what_it_inferred(plan: dict[str, str]) -> None:
    ok("stage", plan["Root"], "--infer-blocks")
    out = ok("stage", plan["Root"])
    assert f"{plan['B']} no longer waits for {plan['A']}  (inferred, removed)" in out
    assert not any(d["type"] == "blocks" for d in deps_of(plan["B"]) + deps_of(plan["C"]))
    assert len(waves(plan["Root"])) == 1  # all four tasks at once again
    assert len(json.loads(ok("list", "--json"))) == 1  # re-staged, not a second convoy


def test_a_stated_order_is_kept_and_a_stated_dep_outlives_a_restage(
        plan: dict[str, str]) -> None:
    ok("dep", "add", plan["task A"], plan["task C"])  # C's work first, by hand: A and C
    ok("stage", plan["Root"], "--infer-blocks")
    inferred = [(b, d["on"]) for b in plan.values() for d in deps_of(b) if d.get("inferred")]
    assert inferred == []  # only B was left free: a chain of one
    ok("dep", "remove", plan["task A"], plan["task C"])
    ok("stage", plan["Root"], "--infer-blocks")
    ok("dep", "add", plan["B"], plan["A"])  # a person states what stage inferred
    assert {"on": plan["A"], "type": "blocks", "status": "open"} in deps_of(plan["B"])
    ok("stage", plan["Root"])
    assert {"on": plan["A"], "type": "blocks", "status": "open"} in deps_of(plan["B"])
    assert not any(d["on"] == plan["B"] for d in deps_of(plan["C"]))


def test_same_stamp_siblings_are_chained_by_id_with_a_warning(
        state_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok("rig", "add", "app", "--target", "main")
    monkeypatch.setenv("CONVOY_NOW", STAMP.format(0))  # an import: one stamp for all
    root = ok("bead", "create", "Root", "--type", "epic")
    subs = [ok("bead", "create", "S", "--type", "epic", "--parent", root, "--id", f"{root}.{n}")
            for n in (10, 2, 1)]
    for sub in subs:
        ok("bead", "create", "t", "--parent", sub)
    staged = json.loads(ok("stage", root, "--infer-blocks", "--json"))
    assert staged["inferred"] == [{"bead": f"{root}.2", "on": f"{root}.1"},
                                  {"bead": f"{root}.10", "on": f"{root}.2"}]  # 2 before 10
    assert [w["code"] for w in staged["warnings"]].count("inferred-order") == 2
    assert staged["status"] == "staged_warnings"


def test_inferred_edges_are_drawn_apart(plan: dict[str, str]) -> None:
    cid = json.loads(ok("stage", plan["Root"], "--infer-blocks", "--json"))["convoy"]
    dot = ok("graph", cid, "--format", "dot")
    assert 'style=dotted, label="blocks, inferred"' in dot
    assert 'class="dep inferred"' in ok("graph", cid)
    assert "-->|blocks, inferred|" in ok("graph", cid, "--format", "mermaid")


# --- --max-depth ---------------------------------------------------------------------


def test_max_depth_refuses_naming_the_deepest_path(plan: dict[str, str]) -> None:
    path = " → ".join(plan[n] for n in ("Root", "A", "D", "task D"))
    line = refused("stage", plan["Root"], "--max-depth", "2")
    assert line == (f"error: max-depth: {path} is 3 levels deep, deeper than --max-depth 2: "
                    "flatten it or raise the limit (nothing was staged)")
    ok("stage", plan["Root"], "--max-depth", "3")


def test_max_depth_through_the_installed_command(plan: dict[str, str]) -> None:
    proc = git_convoy("stage", plan["Root"], "--max-depth", "1", check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("error: max-depth: ") and proc.stderr.count("\n") == 1
    assert git_convoy("stage", plan["Root"], "--max-depth", "0", check=False).returncode == 2


# --- --validate ----------------------------------------------------------------------


def test_validate_adds_one_capstone_blocked_by_every_task(plan: dict[str, str]) -> None:
    root, cap = plan["Root"], f"{plan['Root']}.validate"
    staged = json.loads(ok("stage", root, "--validate", "--json"))
    assert staged["capstone"] == cap and staged["waves"][-1] == [cap]
    bead = json.loads(ok("bead", "show", cap, "--json"))
    tasks = sorted(plan[f"task {n}"] for n in "ABCD")
    assert (bead["parent"], bead["type"], bead["formula"]) == (root, "task", "mol-validate")
    assert bead["acceptance"] == "search answers in 100 ms"
    assert bead["formula_vars"] == {"epic": root}
    assert sorted(d["on"] for d in bead["deps"]) == tasks
    assert cap in json.loads(ok("status", staged["convoy"], "--json"))["tracks"]
    late = ok("bead", "create", "found later", "--parent", plan["B"])
    ok("stage", root, "--validate")
    again = json.loads(ok("bead", "show", cap, "--json"))
    assert sorted(d["on"] for d in again["deps"]) == sorted([*tasks, late])
    assert sum(b["id"].endswith(".validate") for b in json.loads(ok("bead", "list", "--json",
                                                                       "--all"))) == 1


def test_the_root_epic_closes_only_after_its_capstone(plan: dict[str, str]) -> None:
    root, cap = plan["Root"], f"{plan['Root']}.validate"
    cid = json.loads(ok("stage", root, "--validate", "--json"))["convoy"]
    ok("launch", cid, "--force")  # the roll-up runs for open convoys
    for name in ("task A", "task B", "task C", "task D"):
        ok("bead", "close", plan[name])
    ok("feed")  # every task closed: the capstone goes out, with its formula
    shown = json.loads(ok("bead", "show", cap, "--json"))
    assert (shown["status"], shown["formula"]) == ("hooked", "mol-validate")
    assert json.loads(ok("bead", "show", root, "--json"))["status"] != "closed"
    assert f"closes after its validation task {cap}" in refused("bead", "close", root)
    refused("bead", "update", root, "--status", "closed")
    ok("bead", "close", cap)
    ok("feed")
    assert json.loads(ok("bead", "show", root, "--json"))["status"] == "closed"


def test_a_task_added_while_running_also_blocks_the_capstone(plan: dict[str, str]) -> None:
    root, cap = plan["Root"], f"{plan['Root']}.validate"
    cid = json.loads(ok("stage", root, "--validate", "--json"))["convoy"]
    ok("launch", cid, "--force")
    late = ok("bead", "create", "found while running", "--parent", plan["D"])
    assert late in [d["on"] for d in json.loads(ok("bead", "show", cap, "--json"))["deps"]]
    ok("bead", "create", "a note", "--parent", plan["D"], "--type", "decision")  # not work
    assert len(json.loads(ok("bead", "show", cap, "--json"))["deps"]) == 5


def test_validate_needs_an_epic(plan: dict[str, str]) -> None:
    line = refused("stage", plan["task A"], plan["task B"], "--validate")
    assert line.startswith("error: validate: --validate needs an epic")


def test_a_capstone_id_that_cannot_be_used_is_one_line(plan: dict[str, str]) -> None:
    root, cap = plan["Root"], f"{plan['Root']}.validate"
    ok("bead", "create", "squatter", "--type", "epic", "--id", cap)
    assert "is an epic under no epic, not the validation task" in refused("stage", root,
                                                                         "--validate")
    ok("bead", "delete", cap)
    assert f"{cap} (the validation task of {root}) was deleted" in refused(
        "stage", root, "--validate")


def test_the_builtin_formulas_of_stage_and_sling_are_valid(plan: dict[str, str]) -> None:
    out = ok("formula", "check", "mol-validate", "mol-coordinator")
    assert out.count("ok ") == 2
    shown = json.loads(ok("formula", "show", "mol-coordinator", "--json"))
    assert [s["id"] for s in shown["steps"]] == ["read-plan", "stage", "launch", "watch",
                                                 "report"]


# --- sling EPIC ----------------------------------------------------------------------


def coordinator_script(repo: Path, code: int = 0) -> Path:
    script = repo.parent / "coordinator.sh"
    script.write_text('#!/bin/sh\necho "$CONVOY_BEAD $CONVOY_FORMULA $CONVOY_COORDINATOR" '
                      f'>> "{repo.parent}/coordinator.log"\nexit {code}\n')
    script.chmod(0o755)
    git("config", "convoy.rig.app.dispatch", str(script), cwd=repo)
    return repo.parent / "coordinator.log"


def test_sling_an_epic_starts_its_coordinator(plan: dict[str, str], state_repo: Path) -> None:
    log = coordinator_script(state_repo)
    root = plan["Root"]
    assert ok("sling", root) == f"✓ {root}: dispatched its coordinator (rig app)"
    assert log.read_text() == f"{root} mol-coordinator 1\n"
    epic = json.loads(ok("bead", "show", root, "--json"))
    assert epic["formula"] == "mol-coordinator" and epic["status"] == "open"
    assert epic["dispatch"]["coordinator"] == "app"
    assert "worker    coordinator on rig app" in ok("bead", "show", root)
    assert json.loads(ok("list", "--json")) == []  # no convoy: the coordinator stages it
    cid = json.loads(ok("stage", root, "--validate", "--json"))["convoy"]  # its first steps
    ok("launch", cid, "--force")  # warned: the sub-epics have no integration branches
    ok("step", "done", root, "read-plan")


def test_a_failing_coordinator_command_is_recorded(plan: dict[str, str],
                                                   state_repo: Path) -> None:
    coordinator_script(state_repo, code=3)
    res = convoy("sling", plan["Root"])
    assert res.code == 1 and "dispatch command exited 3" in res.out
    epic = json.loads(ok("bead", "show", plan["Root"], "--json"))
    assert "exited 3" in epic["dispatch"]["last_error"] and "coordinator" not in epic["dispatch"]


def test_sling_epic_mistakes_are_one_line_and_write_nothing(plan: dict[str, str]) -> None:
    root = plan["Root"]
    assert "sling it alone" in refused("sling", root, plan["task A"])
    assert "review formula" in refused("sling", root, "--formula", "mol-integration-review")
    assert "has no var 'nope'" in refused("sling", root, "--var", "nope=1")
    assert "unknown rig 'ghost'" in refused("sling", root, "--rig", "ghost")
    ok("bead", "close", plan["D"])
    assert "is closed: there is nothing to coordinate" in refused("sling", plan["D"])
