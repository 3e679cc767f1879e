"""Attacks on the state branch (SECURITY.md): anyone who can push the state ref, or a work
branch, must not be able to choose a command this clone runs, nor land code on a target
around the check its local user configured.

Each story has a victim (the clone with the plan, the hooks, and its own git config) and an
attacker: another clone of the same bare remote that writes hostile state the way any writer
can (the gitconvoy API in its own clone, or git plumbing on the state branch) and pushes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import convoy, git, git_convoy, make_repo, ok
from test_refinery_helpers import hand_dispatch, worker_commit

from gitconvoy.state.model import Bead, Convoy, MergeRequest, Rig, now, touched
from gitconvoy.state.store import Store

pytestmark = pytest.mark.slow

QUIET = {"CONVOY_IN_HOOK": "1"}  # scene-setting git commands must not wake the hooks



@dataclass
class World:
    remote: Path
    victim: Path
    attacker: Path
    pwned: Path  # a hostile command, if it ever runs, creates this file

    def state(self, where: Path | None = None) -> Store:
        return Store.open(str(where or self.victim))

    def bead(self, bead_id: str) -> dict:
        return json.loads(git_convoy("bead", "show", bead_id, "--json", cwd=self.victim).stdout)

    def mr(self, mr_id: str) -> MergeRequest:
        return self.state().snapshot().objects["mrs"][mr_id]


def quiet_git(*args: str, cwd: Path) -> str:
    return git(*args, cwd=cwd, env=QUIET)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    victim = make_repo(tmp_path / "victim")
    git("remote", "add", "origin", str(remote), cwd=victim)
    git("push", "-q", "-u", "origin", "main", cwd=victim)
    git("remote", "set-head", "origin", "main", cwd=victim)
    monkeypatch.chdir(victim)
    ok("init", "--prefix", "t")
    ok("rig", "add", "app", "--target", "main")
    ok("hooks", "install")
    quiet_git("push", "-q", "origin", "convoy/state", cwd=victim)
    attacker = tmp_path / "attacker"
    git("clone", "-q", str(remote), str(attacker))
    git("branch", "convoy/state", "origin/convoy/state", cwd=attacker)
    return World(remote, victim, attacker, tmp_path / "pwned")


def hostile(w: World, mutate, files: dict[str, str] | None = None,
            message: str = "hostile") -> str:
    """The attacker writes the state in its own clone (as any writer may) and pushes it;
    `files` are committed into the state tree itself with git plumbing."""
    git("fetch", "-q", "origin", cwd=w.attacker)
    git("branch", "-f", "convoy/state", "origin/convoy/state", cwd=w.attacker)
    store = w.state(w.attacker)
    if mutate is not None:
        store.transact(mutate, message)
    if files:
        tree = w.attacker / "state-tree"
        git("worktree", "add", "-q", str(tree), "convoy/state", cwd=w.attacker)
        for name, text in files.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(text)
            git("add", name, cwd=tree)
        git("commit", "-q", "-m", message, cwd=tree)
        git("worktree", "remove", "--force", str(tree), cwd=w.attacker)
    git("push", "-q", "origin", "convoy/state", cwd=w.attacker)
    return git("rev-parse", "convoy/state", cwd=w.attacker)


def put_rig(tx, name: str, target: str) -> None:
    rigs = dict(tx.config.rigs)
    rigs[name] = Rig(name=name, target=target)
    tx.put_config(touched(tx.config, rigs=rigs))


def put_ready_bead(tx, bead_id: str, rig: str, **fields) -> Bead:
    stamp = now()
    bead = Bead(id=bead_id, title="innocent looking task", type="task", rig=rig,
                created_at=stamp, created_by="mallory", updated_at=stamp, **fields)
    tx.put(bead)
    tx.put(Convoy(id=f"convoy-{bead_id}", title="evil convoy", tracks=[bead_id],
                  created_at=stamp, created_by="mallory", updated_at=stamp, launched_at=stamp))
    return bead


def touch(path: Path) -> str:
    return f"touch '{path}'"


# --- item 1: the state names a branch, the branch names a command --------------------------


def dispatch_on_state_branch(w: World) -> None:
    """Rig `evil` targets the state branch, whose tree carries a dispatch command for it."""
    def mutate(tx):
        put_rig(tx, "evil", "convoy/state")
        put_ready_bead(tx, "t-evil1", "evil")

    hostile(w, mutate, {".convoy/config.toml": f'[rig.evil]\ndispatch = "{touch(w.pwned)}"\n'})


def take_the_hostile_state_by_hand(w: World) -> None:
    """Sync and the hooks refuse a state tree holding `.convoy/` (the shape check,
    tests/test_untrusted_state.py). The second line of defence is that commands are never
    read from the state ref: to test it, the victim's state ref is set to the hostile commit
    by hand, as plumbing could."""
    git("fetch", "-q", "origin", cwd=w.victim, env=QUIET)
    git("update-ref", "refs/heads/convoy/state", "refs/remotes/origin/convoy/state",
        cwd=w.victim)


@pytest.mark.parametrize("trigger", ["fetch", "sync", "feed"])
def test_a_state_writer_cannot_choose_the_dispatch_command(world, trigger):
    dispatch_on_state_branch(world)
    if trigger == "fetch":  # the hooks refuse the fetched state: one warning, nothing runs
        proc = subprocess.run(["git", "fetch", "-q", "origin"], cwd=world.victim,
                              capture_output=True, text=True)
        assert proc.returncode == 0 and "is not part of the state layout" in proc.stderr
    elif trigger == "sync":
        proc = git_convoy("sync", cwd=world.victim, check=False)
        assert proc.returncode == 1 and ".convoy: is not part of the state layout" in \
            proc.stderr
    take_the_hostile_state_by_hand(world)
    git_convoy("feed", cwd=world.victim, check=False)
    assert "t-evil1" in world.state().snapshot().beads  # the hostile state is here now
    assert not world.pwned.exists()


def test_a_hostile_worker_cannot_choose_the_dispatch_command(world):
    """A worker commits `.convoy/config.toml` on its work branch; the state then points a
    rig at that branch."""
    bead = ok("bead", "create", "honest work")
    branch = hand_dispatch(world.victim, bead)
    worker_commit(world.victim, branch, {
        ".convoy/config.toml": f'[rig.evil]\ndispatch = "{touch(world.pwned)}"\n'})

    def mutate(tx):
        put_rig(tx, "evil", branch)
        put_ready_bead(tx, "t-evil2", "evil")

    hostile(world, mutate)
    git_convoy("sync", "--no-feed", cwd=world.victim, env=QUIET)
    git_convoy("feed", cwd=world.victim, check=False)
    assert not world.pwned.exists()


def test_doctor_does_not_vouch_for_a_command_from_the_state(world):
    dispatch_on_state_branch(world)
    take_the_hostile_state_by_hand(world)
    out = git_convoy("doctor", cwd=world.victim, check=False).stdout
    evil = [ln for ln in out.splitlines() if "rig evil" in ln]
    assert evil and not any(str(world.pwned) in ln for ln in evil), out
    assert any(ln.startswith(("warn", "fail")) and "convoy/state" in ln for ln in evil), out


def review_config_on_state_branch(w: World) -> None:
    """An epic whose target is the state branch, whose tree turns the review gate on with a
    reviewer command and a review formula of its own."""
    formula = (
        'formula = "mol-integration-review"\ndescription = "x"\ntype = "review"\n'
        'version = 9\n[[steps]]\nid = "own"\ntitle = "own step"\n'
        f'run = "{touch(w.pwned.with_suffix(".formula"))}"\n'
    )
    hostile(w, None, {
        ".convoy/config.toml": f'[review]\nenabled = true\ncommand = "{touch(w.pwned)}"\n',
        ".convoy/formulas/mol-integration-review.formula.toml": formula,
    })


def test_a_state_writer_cannot_choose_the_review_command(world):
    victim = world.victim
    review_config_on_state_branch(world)
    take_the_hostile_state_by_hand(world)
    epic = ok("bead", "create", "--type", "epic", "Combined")
    ok("integration", "create", epic, "--base", "main")
    branch = world.bead(epic)["integration_branch"]
    child = ok("bead", "create", "child", "--parent", epic)
    worker_commit(victim, branch, {"c.txt": "c\n"}, "combined work")
    ok("bead", "close", child)

    def retarget(tx):
        tx.put(touched(tx.bead(epic), target="convoy/state"))

    world.state().transact(retarget, "hostile: the epic lands on the state branch")
    ok("create", "Combined convoy", epic)
    git_convoy("feed", cwd=victim, check=False)
    git_convoy("review", "run", epic, cwd=victim, check=False)
    assert not world.pwned.exists()
    assert not world.pwned.with_suffix(".formula").exists()


# --- the one trusted branch (convoy.configRef) ------------------------------------------


def commit_config(repo: Path, branch: str, text: str) -> None:
    """Commit `.convoy/config.toml` on `branch` (created from main when new), quietly."""
    here = git("symbolic-ref", "--short", "HEAD", cwd=repo)
    if git("branch", "--list", branch, cwd=repo) == "":
        quiet_git("branch", branch, "main", cwd=repo)
    quiet_git("switch", "-q", branch, cwd=repo)
    (repo / ".convoy").mkdir(exist_ok=True)
    (repo / ".convoy" / "config.toml").write_text(text)
    quiet_git("add", ".convoy/config.toml", cwd=repo)
    quiet_git("commit", "-q", "-m", f"config on {branch}", cwd=repo)
    quiet_git("switch", "-q", here, cwd=repo)


def rig_line(repo: Path, rig: str = "app") -> str:
    out = git_convoy("doctor", cwd=repo, check=False).stdout
    return next(ln for ln in out.splitlines() if f"config: rig {rig}:" in ln)


def test_commands_come_from_the_config_committed_on_the_default_branch(world):
    victim, marker = world.victim, world.victim.parent / "dispatched"
    commit_config(victim, "main", f'[rig.app]\ndispatch = "{touch(marker)}"\n')
    assert rig_line(victim).endswith(
        "from .convoy/config.toml on main (convoy.configRef unset: origin's HEAD)")
    ok("sling", ok("bead", "create", "honest"))
    assert marker.exists()
    git("config", "convoy.rig.app.dispatch", "true", cwd=victim)
    assert rig_line(victim).endswith("dispatch 'true' from convoy.rig.app.dispatch "
                                     "(local git config)")


def test_config_ref_names_the_one_trusted_branch(world):
    victim, marker = world.victim, world.victim.parent / "dispatched"
    commit_config(victim, "main", '[rig.app]\ndispatch = "false"\n')
    commit_config(victim, "tooling", f'[rig.app]\ndispatch = "{touch(marker)}"\n')
    git("config", "convoy.configRef", "tooling", cwd=victim)
    assert rig_line(victim).endswith("from .convoy/config.toml on tooling (convoy.configRef)")
    ok("sling", ok("bead", "create", "honest"))
    assert marker.exists()


@pytest.mark.parametrize("name", ["convoy/state", "refs/heads/convoy/state", "convoy/t-1",
                                  "integration/t-1-x"])
def test_config_ref_may_not_name_a_branch_others_write(world, name):
    victim = world.victim
    git("config", "convoy.configRef", name, cwd=victim)
    before = git("rev-parse", "convoy/state", cwd=victim)
    res = convoy("formula", "list")
    assert res.code == 1 and res.out == ""
    assert res.err.startswith(f"error: convoy.configRef = '{name}': ")
    assert "set it to a branch you review" in res.err and res.err.count("\n") == 1
    doctor = git_convoy("doctor", cwd=victim, check=False)
    assert doctor.returncode == 1
    assert f"fail  config: convoy.configRef = '{name}'" in doctor.stdout
    assert git("rev-parse", "convoy/state", cwd=victim) == before


@pytest.mark.parametrize("branches, head, remote_head, expected", [
    (["main", "trunk"], "main", "trunk", "trunk"),  # the remote's HEAD first
    (["master", "dev"], "dev", None, "master"),  # then main, then master
    (["dev"], "dev", None, "dev"),  # then the checked-out branch
    (["convoy/t-1"], "convoy/t-1", None, None),  # never a work branch
    (["main"], "main", "convoy/state", "main"),  # nor the state branch, whatever HEAD says
])
def test_the_default_trusted_branch(tmp_path, branches, head, remote_head, expected):
    from gitconvoy.git.localconfig import config_ref

    repo = make_repo(tmp_path / "r")
    for name in set(branches) - {"main"}:
        git("branch", name, "HEAD", cwd=repo)
    git("switch", "-q", head, cwd=repo)
    if "main" not in branches:
        git("branch", "-D", "main", cwd=repo)
    if remote_head:
        git("update-ref", f"refs/remotes/origin/{remote_head}", "HEAD", cwd=repo)
        git("symbolic-ref", "refs/remotes/origin/HEAD", f"refs/remotes/origin/{remote_head}",
            cwd=repo)
    assert config_ref(Store.open(str(repo))).branch == expected


# --- item 2: the state chooses the rig, the rig chose the check ---------------------------


def protect_main(w: World) -> Path:
    """The victim's own rig `app` (target main) has a check that refuses `evil.txt`."""
    script = w.victim.parent / "check.sh"
    script.write_text("#!/bin/sh\n! test -e evil.txt\n")
    script.chmod(0o755)
    git("config", "convoy.rig.app.check", str(script), cwd=w.victim)
    return script


def hostile_work(w: World, name: str, base: str = "origin/main") -> str:
    """The attacker pushes a work branch holding `evil.txt`; the victim's clone has it (as a
    refinery host fetches its workers' branches)."""
    git("checkout", "-q", "-b", name, base, cwd=w.attacker)
    (w.attacker / "evil.txt").write_text("unchecked code\n")
    git("add", "evil.txt", cwd=w.attacker)
    git("commit", "-q", "-m", "totally fine", cwd=w.attacker)
    git("push", "-q", "origin", name, cwd=w.attacker)
    quiet_git("fetch", "-q", "origin", f"{name}:{name}", cwd=w.victim)
    return git("rev-parse", name, cwd=w.attacker)


def queue_hostile_mr(w: World, bead_id: str, rig: str, branch: str, commit: str,
                     target: str = "main", base: str | None = None) -> str:
    main = git("rev-parse", "origin/main", cwd=w.attacker)
    mr_id = f"mr-{bead_id}"

    def mutate(tx):
        stamp = now()
        put_ready_bead(tx, bead_id, rig)
        tx.put(touched(tx.bead(bead_id), status="in_progress", branch=branch, target=target,
                       base_commit=base or main, mr=mr_id, started_at=stamp))
        tx.put(MergeRequest(id=mr_id, bead=bead_id, branch=branch, commit=commit,
                            target=target, worker="mallory", created_at=stamp,
                            updated_at=stamp))

    hostile(w, mutate, message=f"hostile: queue {mr_id}")
    git_convoy("sync", "--no-feed", cwd=w.victim, env=QUIET)
    return mr_id


def landed_nothing(w: World, before: str) -> None:
    assert git("rev-parse", "main", cwd=w.victim) == before
    assert git("rev-parse", "main", cwd=w.remote) == before
    assert git("ls-tree", "-r", "--name-only", "main", cwd=w.remote).split() == ["README"]


def test_a_new_rig_cannot_route_work_around_the_check_on_main(world):
    protect_main(world)
    commit = hostile_work(world, "convoy/t-evil3")

    def new_rig(tx):
        put_rig(tx, "evil", "main")

    hostile(world, new_rig)
    mr_id = queue_hostile_mr(world, "t-evil3", "evil", "convoy/t-evil3", commit)
    before = git("rev-parse", "main", cwd=world.victim)
    out = git_convoy("refinery", "run", cwd=world.victim, check=False).stdout
    assert world.mr(mr_id).status == "rejected", out
    assert "check failed" in (world.mr(mr_id).reason or "")
    landed_nothing(world, before)


def test_retargeting_the_checked_rig_does_not_unguard_main(world):
    """The state moves rig app (the one with the check) away from main, then lands through
    a new rig: the check the user configured still guards main."""
    protect_main(world)
    commit = hostile_work(world, "convoy/t-evil4")

    def reroute(tx):
        put_rig(tx, "app", "elsewhere")
        put_rig(tx, "evil", "main")

    hostile(world, reroute)
    mr_id = queue_hostile_mr(world, "t-evil4", "evil", "convoy/t-evil4", commit)
    before = git("rev-parse", "main", cwd=world.victim)
    git_convoy("refinery", "run", cwd=world.victim, check=False)
    assert world.mr(mr_id).status == "rejected"
    landed_nothing(world, before)


def test_the_target_check_runs_whatever_rig_the_state_names(world):
    script = world.victim.parent / "main-check.sh"
    script.write_text("#!/bin/sh\n! test -e evil.txt\n")
    script.chmod(0o755)
    git("config", "convoy.target.main.check", str(script), cwd=world.victim)
    commit = hostile_work(world, "convoy/t-evil5")
    hostile(world, lambda tx: put_rig(tx, "evil", "main"))
    mr_id = queue_hostile_mr(world, "t-evil5", "evil", "convoy/t-evil5", commit)
    before = git("rev-parse", "main", cwd=world.victim)
    git_convoy("refinery", "run", cwd=world.victim, check=False)
    assert world.mr(mr_id).status == "rejected"
    assert "check failed" in (world.mr(mr_id).reason or "")
    landed_nothing(world, before)


def test_the_state_branch_is_never_landed_as_work(world):
    """No check anywhere: still, the refinery refuses to merge the state's own history."""
    state_tip = git("rev-parse", "convoy/state", cwd=world.victim)
    mr_id = queue_hostile_mr(world, "t-evil6", "app", "convoy/state", state_tip)
    before = git("rev-parse", "main", cwd=world.victim)
    out = git_convoy("refinery", "run", cwd=world.victim, check=False).stdout
    assert world.mr(mr_id).status == "rejected", out
    line = next(ln for ln in out.splitlines() if mr_id in ln)
    assert "state" in line, out
    landed_nothing(world, before)


def test_nothing_lands_on_the_state_branch(world):
    commit = hostile_work(world, "convoy/t-evil9")
    mr_id = queue_hostile_mr(world, "t-evil9", "app", "convoy/t-evil9", commit,
                             target="convoy/state")
    state = git("rev-parse", "convoy/state", cwd=world.victim)
    out = git_convoy("refinery", "run", cwd=world.victim, check=False).stdout
    assert f"{mr_id} (t-evil9): refused: target convoy/state is the state branch" in out
    assert world.mr(mr_id).status == "rejected"
    assert not git("ls-tree", "--name-only", "convoy/state", "evil.txt", cwd=world.victim)
    assert git("rev-list", "--count", f"{state}..convoy/state", cwd=world.victim) == "1"


def test_state_history_dressed_as_a_work_branch_is_refused(world):
    """A branch that merges the state's history with main (so it shares history with the
    target) and claims the state tip as its base."""
    state_tip = git("rev-parse", "origin/convoy/state", cwd=world.attacker)
    git("checkout", "-q", "-b", "convoy/t-evil7", state_tip, cwd=world.attacker)
    git("merge", "-q", "--allow-unrelated-histories", "--no-edit", "origin/main",
        cwd=world.attacker)
    git("push", "-q", "origin", "convoy/t-evil7", cwd=world.attacker)
    quiet_git("fetch", "-q", "origin", "convoy/t-evil7:convoy/t-evil7", cwd=world.victim)
    commit = git("rev-parse", "convoy/t-evil7", cwd=world.attacker)
    mr_id = queue_hostile_mr(world, "t-evil7", "app", "convoy/t-evil7", commit,
                             base=state_tip)
    before = git("rev-parse", "main", cwd=world.victim)
    out = git_convoy("refinery", "run", cwd=world.victim, check=False).stdout
    assert world.mr(mr_id).status == "rejected", out
    landed_nothing(world, before)


def test_unrelated_history_is_refused(world):
    git("checkout", "-q", "--orphan", "convoy/t-evil8", cwd=world.attacker)
    git("rm", "-rq", "--cached", ".", cwd=world.attacker)
    (world.attacker / "evil.txt").write_text("from nowhere\n")
    git("add", "evil.txt", cwd=world.attacker)
    git("commit", "-q", "-m", "unrelated", cwd=world.attacker)
    git("push", "-q", "origin", "convoy/t-evil8", cwd=world.attacker)
    quiet_git("fetch", "-q", "origin", "convoy/t-evil8:convoy/t-evil8", cwd=world.victim)
    commit = git("rev-parse", "convoy/t-evil8", cwd=world.attacker)
    mr_id = queue_hostile_mr(world, "t-evil8", "app", "convoy/t-evil8", commit, base=commit)
    before = git("rev-parse", "main", cwd=world.victim)
    out = git_convoy("refinery", "run", cwd=world.victim, check=False).stdout
    assert world.mr(mr_id).status == "rejected", out
    landed_nothing(world, before)


def test_an_epic_lands_on_main_only_through_mains_check(world):
    """Integration landings use the target's check too, whatever rig the epic names."""
    victim = world.victim
    protect_main(world)
    hostile(world, lambda tx: put_rig(tx, "evil", "main"))
    git_convoy("sync", "--no-feed", cwd=victim, env=QUIET)
    epic = ok("bead", "create", "--type", "epic", "Sneaky", "--rig", "evil")
    ok("integration", "create", epic, "--base", "main")
    branch = world.bead(epic)["integration_branch"]
    child = ok("bead", "create", "child", "--parent", epic)
    worker_commit(victim, branch, {"evil.txt": "x\n"}, "combined work")
    ok("bead", "close", child)
    before = git("rev-parse", "main", cwd=victim)
    res = convoy("integration", "land", epic)
    assert res.code == 1 and "check failed" in res.err, res
    assert git("rev-parse", "main", cwd=victim) == before


def test_only_checked_commits_are_pushed(world):
    """A landing kept locally after failed pushes is checked (by the target's check as it is
    now) before a retry pushes it."""
    victim = world.victim
    hook = world.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    git("config", "convoy.refinery.pushAttempts", "1", cwd=victim)
    bead = ok("bead", "create", "kept locally")
    branch = hand_dispatch(victim, bead)
    worker_commit(victim, branch, {"evil.txt": "x\n"})
    ok("done", bead)
    before = git("rev-parse", "main", cwd=world.remote)
    assert git_convoy("refinery", "run", cwd=victim, check=False).returncode == 3
    [mr] = world.state().snapshot().objects["mrs"].values()
    assert mr.status == "push_failed"
    hook.unlink()
    protect_main(world)
    git_convoy("refinery", "retry", mr.id, cwd=victim, check=False)
    assert world.mr(mr.id).status == "rejected"
    assert git("rev-parse", "main", cwd=world.remote) == before


# --- which checks guard a target (gitconvoy/land/targetchecks.py) -----------------------


def rigs(**targets: str) -> dict[str, Rig]:
    return {name: Rig(name=name, target=target) for name, target in targets.items()}


@pytest.mark.parametrize("config, toml, state_rigs, target, rig, expected, why", [
    ({"convoy.target.main.check": "T", "convoy.rig.app.check": "A"}, "",
     rigs(app="main", evil="main"), "main", "evil", ["T"], "main's own check"),
    ({}, '[target.main]\ncheck = "T"\n', rigs(evil="main"), "main", "evil", ["T"],
     "main's own check"),
    ({"convoy.target.main.check": "", "convoy.rig.app.check": "A"}, "", rigs(app="main"),
     "main", "app", [], "main lands unchecked"),
    ({"convoy.rig.app.check": "A", "convoy.rig.web.check": "B"}, "",
     rigs(app="main", web="main", evil="main", doc="pages"), "main", "evil", ["A", "B"],
     "the checks of the rigs that land on main"),
    ({"convoy.rig.app.check": "A"}, "", rigs(app="elsewhere", evil="main"), "main", "evil",
     ["A"], "no check names main"),
    ({}, '[rig.app]\ncheck = "A"\n', rigs(app="elsewhere", evil="main"), "main", "evil",
     ["A"], "no check names main"),
    ({"convoy.rig.app.check": "A"}, "", rigs(app="main"), "integration/t-1-x", "app", ["A"],
     "the checks of the rigs that land on integration/t-1-x"),
    ({"convoy.rig.app.check": "A", "convoy.rig.web.check": "A"}, "",
     rigs(app="main", web="main"), "main", "app", ["A"], "the checks of"),
    ({}, "", rigs(app="main"), "main", "app", [], "no check configured"),
])
def test_which_checks_guard_a_target(repo, config, toml, state_rigs, target, rig, expected,
                                     why):
    from gitconvoy.land.targetchecks import checks_for

    for key, value in config.items():
        git("config", key, value, cwd=repo)
    if toml:
        commit_config(repo, "main", toml)
    plan = checks_for(Store.open(str(repo)), state_rigs, target, state_rigs.get(rig))
    assert [c.command for c in plan.checks] == expected
    assert plan.why.startswith(why)


def test_a_target_check_has_its_own_timeout_and_names_its_source(repo):
    from gitconvoy.land.targetchecks import checks_for

    git("config", "convoy.target.release/1.x.check", "make test", cwd=repo)
    git("config", "convoy.target.release/1.x.timeout", "90s", cwd=repo)
    [check] = checks_for(Store.open(str(repo)), {}, "release/1.x", None).checks
    assert (check.command, check.timeout) == ("make test", 90.0)
    assert check.source == "convoy.target.release/1.x.check (local git config)"


def test_several_checks_all_run_and_the_failing_one_is_named(state_repo):
    from gitconvoy.land.targetchecks import checks_for, run

    ran = state_repo.parent / "ran"
    git("config", "convoy.rig.app.check", f"echo app >> '{ran}'", cwd=state_repo)
    git("config", "convoy.rig.web.check", f"echo web >> '{ran}'; exit 3", cwd=state_repo)
    store = Store.open(str(state_repo))
    plan = checks_for(store, rigs(app="main", web="main"), "main", None)
    result = run(store, plan, git("rev-parse", "main", cwd=state_repo), label="two", env={})
    assert ran.read_text().split() == ["app", "web"]
    assert not result.passed
    assert result.detail == "check failed (exit 3) [convoy.rig.web.check (local git config)]"


def test_doctor_says_what_guards_each_target(world):
    git("config", "convoy.target.main.check", "make test", cwd=world.victim)
    out = git_convoy("doctor", cwd=world.victim, check=False).stdout
    assert ("ok    config: target main: main's own check: 'make test' from "
            "convoy.target.main.check (local git config)") in out.splitlines()


# --- item 8: whether a landing was pushed is the remote's to say ---------------------------


def wait_for(path: Path, proc: subprocess.Popen, bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_commit_on_main_during_the_check_does_not_make_a_pushed_landing_fail(world):
    victim = world.victim
    started, go = victim.parent / "check-started", victim.parent / "check-go"
    script = victim.parent / "slow-check.sh"
    script.write_text(f"#!/bin/sh\ntouch '{started}'\nn=0\nwhile [ ! -e '{go}' ]; do\n"
                      "  n=$((n + 1)); [ $n -gt 3000 ] && exit 1; sleep 0.02\ndone\n")
    script.chmod(0o755)
    git("config", "convoy.rig.app.check", str(script), cwd=victim)
    bead = ok("bead", "create", "slow to check")
    branch = hand_dispatch(victim, bead)
    worker_commit(victim, branch, {"work.txt": "w\n"})
    ok("done", bead)
    proc = subprocess.Popen(["git", "convoy", "refinery", "run"], cwd=victim, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **QUIET})
    try:
        wait_for(started, proc)
        (victim / "mine.txt").write_text("the user's own change\n")
        quiet_git("add", "mine.txt", cwd=victim)
        quiet_git("commit", "-q", "-m", "user: committed during the check", cwd=victim)
        go.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    [mr] = world.state().snapshot().objects["mrs"].values()
    assert mr.status == "merged", (out, err, mr)
    remote_main = git("rev-parse", "main", cwd=world.remote)
    assert mr.merged_as == remote_main
    assert git("show", f"{remote_main}:work.txt", cwd=victim) == "w"
    assert git("log", "-1", "--format=%s", "main", cwd=victim) == \
        "user: committed during the check"
    assert world.bead(bead)["status"] == "closed"
    assert "git pull" in out, out

