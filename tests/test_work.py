"""Work formulas reach workers (issue 13): a formula is validated when it is named, kept on
the bead so every later dispatch hands out the same one, and `git convoy work` prepares a
worker: its worktree, the recorded start, the brief with the formula's steps; `step done`
records the steps; `done` warns about the ones left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import STATE_REF, convoy, git, git_convoy, ok, ref_of, stuck
from test_refinery_helpers import (
    add_rig,
    bead_json,
    file_at,
    hand_dispatch,
    mrs,
    new_task,
    worker_commit,
)

from gitconvoy.errors import SchemaError
from gitconvoy.state.merge import merge_object
from gitconvoy.state.model import Bead

WORK = "mol-polecat-work"
STEPS = ["implement", "test", "commit", "done"]


def record_env(repo: Path, rig: str = "app") -> Path:
    """A dispatch command that writes the CONVOY_* it got to envs/<bead>.env."""
    folder = repo.parent / "envs"
    folder.mkdir(exist_ok=True)
    script = repo.parent / "record-env.sh"
    script.write_text(f'#!/bin/sh\nenv | grep ^CONVOY_ | sort > "{folder}/$CONVOY_BEAD.env"\n')
    script.chmod(0o755)
    git("config", f"convoy.rig.{rig}.dispatch", str(script), cwd=repo)
    return folder


def env_of(folder: Path, bead: str) -> dict[str, str]:
    text = (folder / f"{bead}.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def brief(bead: str) -> dict:
    return json.loads(ok("work", bead, "--format", "json"))


# --- the state fields --------------------------------------------------------------------


def bead_data(**extra: object) -> dict:
    return {"id": "t-1", "title": "x", "priority": 2, **extra}


@pytest.mark.parametrize(("extra", "field"), [
    ({"formula": "../etc/passwd"}, "formula"),
    ({"formula": "a" * 101}, "formula"),
    ({"formula": ["mol-polecat-work"]}, "formula"),
    ({"formula_vars": ["a"]}, "formula_vars"),
    ({"formula_vars": {"bad key": "v"}}, "formula_vars"),
    ({"formula_vars": {"k": 1}}, "formula_vars.k"),
    ({"formula_vars": {"k": "v" * 2001}}, "formula_vars.k"),
    ({"formula_vars": {f"k{i}": "v" for i in range(33)}}, "formula_vars"),
    ({"steps_done": "implement"}, "steps_done"),
    ({"steps_done": ["rm -rf"]}, "steps_done"),
    ({"steps_done": [f"s{i}" for i in range(65)]}, "steps_done"),
])
def test_bad_formula_fields_name_the_file_and_field(extra, field):
    with pytest.raises(SchemaError) as caught:
        Bead.from_dict(bead_data(**extra), "beads/t-1.yaml")
    assert f"field '{field}'" in caught.value.message


def test_formula_fields_round_trip():
    data = bead_data(formula=WORK, formula_vars={"tests": "make test"},
                     steps_done=["test", "implement", "test"])
    bead = Bead.from_dict(data, "beads/t-1.yaml")
    assert bead.steps_done == ["implement", "test"]
    assert Bead.from_dict(bead.to_dict(), "b").to_dict() == bead.to_dict()


def test_steps_recorded_on_two_clones_both_survive_a_merge():
    base = Bead(id="t-1", title="x", formula=WORK, updated_at="1").to_dict()
    ours = {**base, "steps_done": ["implement"], "updated_at": "2"}
    theirs = {**base, "steps_done": ["test"], "updated_at": "3"}
    merged = merge_object(base, ours, theirs).value
    assert merged is not None and merged["steps_done"] == ["implement", "test"]


# --- naming a formula --------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--formula", "does-not-exist"], "error: formula 'does-not-exist' not found in "),
    (["--formula", "mol-integration-review"],
     "formula 'mol-integration-review' is a review formula; workers follow workflow"),
    (["--formula", WORK, "--var", "nope=1"], "formula 'mol-polecat-work' has no var 'nope'"),
    (["--formula", WORK, "--var", "bead=x"], "error: var 'bead' is filled in from the bead"),
    (["--formula", WORK, "--var", "novalue"], "error: --var 'novalue': expected NAME=VALUE"),
    (["--var", "tests=x"], "error: --var needs --formula"),
])
def test_sling_refuses_a_formula_it_cannot_hand_out(state_repo, args, message):
    add_rig()
    bead = new_task("Something")
    before = ref_of(state_repo)
    res = convoy("sling", bead, *args)
    assert res.code == 1 and message in res.err and res.err.count("\n") == 1
    assert ref_of(state_repo) == before


def test_a_bead_blocked_at_sling_gets_the_formula_when_it_is_dispatched_later(state_repo):
    add_rig()
    envs = record_env(state_repo)
    first, second = new_task("First"), new_task("Second")
    ok("dep", "add", second, first)
    ok("sling", first, second, "--formula", WORK, "--var", "tests=make check")
    assert env_of(envs, first)["CONVOY_FORMULA"] == WORK
    assert bead_json(second)["formula"] == WORK and not (envs / f"{second}.env").exists()
    worker_commit(state_repo, f"convoy/{first}", {"a.txt": "a\n"})
    ok("done", first)
    ok("refinery", "run")  # lands the first; its feed dispatches the second
    assert env_of(envs, second)["CONVOY_FORMULA"] == WORK
    assert bead_json(second)["formula_vars"] == {"tests": "make check"}
    assert brief(second)["steps"][1]["title"] == "Run make check"


def test_a_rigs_default_formula_is_handed_out_and_kept(state_repo):
    add_rig()
    envs = record_env(state_repo)
    git("config", "convoy.rig.app.formula", WORK, cwd=state_repo)
    bead = new_task("Uses the default")
    ok("sling", bead)
    assert env_of(envs, bead)["CONVOY_FORMULA"] == WORK
    assert bead_json(bead)["formula"] == WORK  # stored: another clone's worker sees it too


def test_a_rigs_default_formula_that_cannot_be_followed_holds_the_dispatch(state_repo):
    add_rig()
    git("config", "convoy.rig.app.formula", "mol-integration-review", cwd=state_repo)
    bead = new_task("Held")
    res = convoy("sling", bead)
    assert res.code == 1
    assert "rig app's formula (convoy.rig.app.formula): " in res.out
    assert "is a review formula" in res.out
    shown = bead_json(bead)
    assert shown["status"] == "open" and shown["formula"] is None


def test_conflict_beads_carry_the_conflict_formula_and_its_brief(state_repo):
    add_rig()
    first, second = new_task("Edit config one way"), new_task("Edit config another way")
    b1, b2 = hand_dispatch(state_repo, first), hand_dispatch(state_repo, second)
    worker_commit(state_repo, b1, {"config.ini": "mode = fast\n"})
    worker_commit(state_repo, b2, {"config.ini": "mode = safe\n"})
    ok("done", first)
    ok("done", second)
    stuck("refinery", "run")
    [mr] = [m for m in mrs().values() if m.bead == second and m.open]
    assert bead_json(mr.conflict_bead)["formula"] == "mol-conflict-resolve"
    ok("sling", mr.conflict_bead)
    got = brief(mr.conflict_bead)
    # the MR's branch is checked out in the worker's worktree: that one is reused
    assert got["worktree"] == str(state_repo.parent / ("wt-" + b2.replace("/", "-")))
    assert got["conflict"]["mr"] == mr.id and got["conflict"]["files"] == ["config.ini"]
    assert [s["id"] for s in got["steps"]] == ["inspect", "merge", "test", "commit", "done"]
    assert got["steps"][1]["title"] == f"Merge main into {b2}"


# --- git convoy work ---------------------------------------------------------------------


def test_work_prepares_the_worktree_records_the_start_and_prints_the_brief(state_repo):
    add_rig()
    first, second = new_task("First"), new_task("Second", "-d", "Line one\nline two",
                                                  "--acceptance", "It works")
    ok("dep", "add", second, first)
    ok("sling", first, second, "--formula", WORK)
    worker_commit(state_repo, f"convoy/{first}", {"a.txt": "a\n"})
    ok("done", first)
    ok("refinery", "run")
    landed = bead_json(first)["dispatch"]["landed_as"]
    assert bead_json(second)["status"] == "hooked"

    before = ref_of(state_repo)
    path = ok("work", second, "--print-path")
    assert Path(path) == state_repo / ".git" / "convoy" / "worktrees" / second
    assert git("symbolic-ref", "HEAD", cwd=path) == f"refs/heads/convoy/{second}"
    assert bead_json(second)["status"] == "in_progress"
    assert git("log", "-1", "--format=%s", STATE_REF) == f"work started {second}"
    assert git("rev-parse", f"{STATE_REF}~1") == before

    started = ref_of(state_repo)
    got = brief(second)  # again: the same worktree, nothing written
    assert ref_of(state_repo) == started and got["worktree"] == path
    assert got["started"] is False and got["acceptance"] == "It works"
    assert got["blockers"] == [{"bead": first, "title": "First", "commit": landed}]
    assert [s["id"] for s in got["steps"]] == STEPS
    assert [s["ready"] for s in got["steps"]] == [True, False, False, False]

    text = ok("work", second)
    assert f"    {first} {landed[:10]}  First" in text
    assert "    ▶ implement  Implement Second" in text and "    line two" in text
    prompt = ok("work", second, "--format", "prompt")
    assert prompt.startswith(f"You are a worker on bead {second}: Second")
    assert f"- {first} (First): commit {landed}" in prompt
    assert "1. [ ] implement: Implement Second" in prompt
    assert prompt.rstrip().endswith(f"then run: git convoy done {second}")


def test_work_reuses_the_worktree_that_has_the_branch(state_repo):
    add_rig()
    bead = new_task("Somewhere else")
    ok("sling", bead)
    elsewhere = state_repo.parent / "mine"
    git("worktree", "add", "-q", str(elsewhere), f"convoy/{bead}", cwd=state_repo)
    assert Path(ok("work", bead, "--print-path")) == elsewhere


def test_the_rig_worktree_setting_and_work_agree_on_the_worktree(state_repo):
    add_rig()
    envs = record_env(state_repo)
    git("config", "convoy.rig.app.worktree", "true", cwd=state_repo)
    bead = new_task("In a worktree")
    ok("sling", bead, "--formula", WORK)
    made = env_of(envs, bead)["CONVOY_WORKTREE"]
    assert made == str(state_repo / ".git" / "convoy" / "worktrees" / bead)
    assert ok("work", bead, "--print-path") == made


def test_a_title_cannot_forge_lines_of_the_brief(state_repo):
    add_rig()
    bead = new_task("Fix\x1b]0;owned\x07 it")
    ok("sling", bead, "--formula", WORK)
    for fmt in ("text", "prompt"):
        out = ok("work", bead, "--format", fmt)
        assert "\x1b" not in out and "\\x1b]0;owned\\x07" in out


@pytest.mark.parametrize(("setup", "message"), [
    ("open", "is open: it has not been handed out"),
    ("closed", "is closed (done): there is nothing to work on"),
    ("unknown", "error: unknown bead 'zz-nope'"),
])
def test_work_refuses_what_is_not_handed_out(state_repo, setup, message):
    bead = "zz-nope" if setup == "unknown" else new_task("Not mine")
    if setup == "closed":
        ok("bead", "close", bead, "--reason", "done")
    before = ref_of(state_repo)
    res = convoy("work", bead)
    assert res.code == 1 and message in res.err and res.err.count("\n") == 1
    assert ref_of(state_repo) == before


# --- steps -------------------------------------------------------------------------------


def test_steps_are_recorded_shown_and_done_warns_about_the_rest(state_repo):
    add_rig()
    bead = new_task("Stepwise")
    ok("sling", bead, "--formula", WORK)
    convoy_id = json.loads(ok("list", "--json"))[0]["id"]
    path = Path(ok("work", bead, "--print-path"))

    res = convoy("step", "done", bead, "test")
    assert res.code == 0 and "needs implement, not recorded as done yet" in res.err
    assert ok("step", "done", bead, "implement").endswith("left: commit, done")
    again = ok("step", "done", bead, "implement")
    assert "(already recorded)" in again
    assert bead_json(bead)["steps_done"] == ["implement", "test"]
    assert "@app-worker  steps 2/4" in ok("status", convoy_id)
    shown = ok("bead", "show", bead)
    assert "  steps     2/4 done" in shown and "    · commit     Commit on" in shown

    (path / "s.txt").write_text("s\n")
    git("add", "s.txt", cwd=path)
    git("commit", "-q", "-m", "step by step", cwd=path)
    res = convoy("done", bead)
    assert res.code == 0 and "queued mr-" in res.out
    assert f"warning: {bead}: formula steps not recorded as done: commit, done" in res.err
    for step in ("commit", "done"):
        ok("step", "done", bead, step)
    assert "warning" not in convoy("done", bead).err


@pytest.mark.parametrize(("step", "message"), [
    ("deploy", "formula mol-polecat-work has no step 'deploy' (steps: implement, test, "
               "commit, done)"),
    ("bad id!", "step id 'bad id!' is not valid"),
])
def test_step_done_refuses_a_step_the_formula_lacks(state_repo, step, message):
    add_rig()
    bead = new_task("Stepwise")
    ok("sling", bead, "--formula", WORK)
    before = ref_of(state_repo)
    res = convoy("step", "done", bead, step)
    assert res.code == 1 and message in res.err and res.err.count("\n") == 1
    assert ref_of(state_repo) == before


def test_step_done_without_a_formula_says_how_to_give_one(state_repo):
    add_rig()
    bead = new_task("Plain")
    ok("sling", bead)
    res = convoy("step", "done", bead, "implement")
    assert res.code == 1 and f"{bead} has no formula" in res.err


# --- another clone -----------------------------------------------------------------------


def test_a_claim_on_another_clone_gets_the_formula(tmp_path, chdir):
    from conftest import make_repo

    origin = make_repo(tmp_path / "alice")
    chdir(origin)
    ok("init", "--prefix", "t")
    add_rig()
    blocker, bead = new_task("Blocker"), new_task("Claimed elsewhere")
    ok("dep", "add", bead, blocker)
    ok("sling", bead, "--formula", WORK, "--var", "tests=tox")  # waits for the blocker
    ok("bead", "close", blocker, "--reason", "not needed")
    bare = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(origin), str(bare))
    bob = tmp_path / "bob"
    git("clone", "-q", str(bare), str(bob))
    chdir(bob)
    git("config", "convoy.rig.app.formula", "mol-conflict-resolve", cwd=bob)  # not used
    claimed = json.loads(ok("claim", "--json"))
    assert (claimed["bead"], claimed["formula"]) == (bead, WORK)
    assert claimed["formula_vars"] == {"tests": "tox"}
    assert brief(bead)["steps"][1]["title"] == "Run tox"


# --- an agent as the dispatch command ----------------------------------------------------

AGENT = r"""#!/bin/sh
# A stand-in for a coding agent: it reads its prompt, follows the formula's steps in order
# (each step line reads "N. [ ] <id>: <title>"), records each, and hands the work over.
set -e
prompt="$(cat)"
printf '%s\n' "$prompt" > "$AGENT_LOG/$CONVOY_BEAD.prompt"
steps=$(printf '%s\n' "$prompt" | sed -n 's/^[0-9][0-9]*\. \[ \] \([A-Za-z0-9._-]*\):.*/\1/p')
for step in $steps; do
  case "$step" in
    implement) printf '%s\n' "$CONVOY_TITLE" > "$CONVOY_BEAD.txt" ;;
    test) test -s "$CONVOY_BEAD.txt" ;;
    commit) git add "$CONVOY_BEAD.txt"
            git commit -q -m "$CONVOY_TITLE" -m "Convoy-Bead: $CONVOY_BEAD" ;;
  esac
  git convoy step done "$CONVOY_BEAD" "$step"
done
git convoy done "$CONVOY_BEAD"
"""

ONE_LINER = ('cd "$(git convoy work "$CONVOY_BEAD" --print-path)" && '
             'git convoy work "$CONVOY_BEAD" --format prompt | {agent}')


def test_an_agent_stub_follows_the_steps_and_its_work_lands(state_repo):
    """The documented one-line dispatch command with a stub agent, end to end through the
    installed `git convoy`: the first bead is worked and queued during `sling`, lands with
    `refinery run`, whose feed dispatches the bead that waited for it — with the same
    formula and the first one's landed commit in its prompt."""
    agent = state_repo.parent / "agent.sh"
    agent.write_text(AGENT)
    agent.chmod(0o755)
    log = state_repo.parent / "prompts"
    log.mkdir()
    env = {"AGENT_LOG": str(log)}
    git_convoy("rig", "add", "app", "--target", "main", cwd=state_repo)
    git("config", "convoy.rig.app.dispatch", ONE_LINER.format(agent=agent), cwd=state_repo)
    first = git_convoy("bead", "create", "Write the greeting", cwd=state_repo).stdout.strip()
    second = git_convoy("bead", "create", "Write the farewell", cwd=state_repo).stdout.strip()
    git_convoy("dep", "add", second, first, cwd=state_repo)

    out = git_convoy("sling", first, second, "--formula", WORK, cwd=state_repo, env=env)
    assert f"✓ {first}: dispatched" in out.stdout
    assert bead_json(first)["steps_done"] == sorted(STEPS)
    assert [m.bead for m in mrs().values() if m.open] == [first]

    ran = git_convoy("refinery", "run", cwd=state_repo, env=env).stdout
    assert f"feed: ✓ {second}: dispatched" in ran
    landed = bead_json(first)["dispatch"]["landed_as"]
    prompt = (log / f"{second}.prompt").read_text()
    assert f"- {first} (Write the greeting): commit {landed}" in prompt
    assert "4. [ ] done: Queue" in prompt

    git_convoy("refinery", "run", cwd=state_repo, env=env)
    assert file_at(state_repo, "main", f"{first}.txt") == "Write the greeting"
    assert file_at(state_repo, "main", f"{second}.txt") == "Write the farewell"
    for bead in (first, second):
        shown = bead_json(bead)
        assert shown["status"] == "closed" and shown["steps_done"] == sorted(STEPS)
    assert json.loads(ok("list", "--all", "--json"))[0]["status"] == "closed"
