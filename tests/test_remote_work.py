"""Work done on another machine: a worker pushes its branch, a forge merges it, and the
orchestrator's clone sees it land after a plain `git fetch`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, git_convoy, is_ancestor
from test_lander import wait_for


def remote_and_lead(tmp_path: Path) -> tuple[Path, Path]:
    """A bare remote and the lead's clone of it, with one commit on main, pushed (upstream
    set)."""
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    lead = tmp_path / "lead"
    git("clone", "-q", str(remote), str(lead))
    (lead / "README").write_text("app\n")
    git("add", "README", cwd=lead)
    git("commit", "-q", "-m", "initial", cwd=lead)
    git("push", "-q", "-u", "origin", "main", cwd=lead)
    return remote, lead


def test_pushed_work_branch_merged_on_the_remote_lands_after_fetch(tmp_path: Path):
    remote, lead = remote_and_lead(tmp_path)
    git_convoy("init", "--prefix", "w", cwd=lead)
    git_convoy("rig", "add", "app", "--target", "main", cwd=lead)
    t1 = git_convoy("bead", "create", "one", cwd=lead).stdout.strip()
    t2 = git_convoy("bead", "create", "two", "--dep", t1, cwd=lead).stdout.strip()
    git_convoy("sling", t1, t2, cwd=lead)
    git("push", "-q", "origin", f"convoy/{t1}", "convoy/state", cwd=lead)

    worker = tmp_path / "worker"
    git("clone", "-q", "-b", f"convoy/{t1}", str(remote), str(worker))
    (worker / "one.txt").write_text("done\n")
    git("add", "one.txt", cwd=worker)
    git("commit", "-q", "-m", "work on one", cwd=worker)
    git("push", "-q", "origin", f"convoy/{t1}", cwd=worker)
    git("checkout", "-q", "main", cwd=worker)
    git("merge", "-q", "--no-ff", "--no-edit", f"origin/convoy/{t1}", cwd=worker)
    git("push", "-q", "origin", "main", cwd=worker)  # what a forge's merge button does

    git("fetch", "-q", "origin", cwd=lead)
    out = git_convoy("feed", cwd=lead).stdout
    assert f"{t1}: landed in" in out
    assert f"✓ {t2}" in out
    shown = json.loads(git_convoy("bead", "show", t2, "--json", cwd=lead).stdout)
    # the dependent starts from the remote main that holds its blocker's work
    assert shown["base_commit"] == git("rev-parse", "origin/main", cwd=lead)


def two_clones_and_a_claimed_bead(tmp_path: Path) -> tuple[Path, Path, str, str]:
    """lead: the state, a rig, an epic with an integration branch (pushed) and a task under
    it, and a plain task; worker: a clone that claimed the plain task and pushed its work."""
    remote, lead = remote_and_lead(tmp_path)
    git_convoy("init", "--prefix", "w", cwd=lead)
    git_convoy("rig", "add", "app", "--target", "main", cwd=lead)
    plain = git_convoy("bead", "create", "plain", "--priority", "0", cwd=lead).stdout.strip()
    epic = git_convoy("bead", "create", "epic", "--type", "epic", cwd=lead).stdout.strip()
    inner = git_convoy("bead", "create", "inner", "--parent", epic, cwd=lead).stdout.strip()
    git_convoy("integration", "create", epic, "--name", "integration/e", cwd=lead)
    git("push", "-q", "origin", "integration/e", cwd=lead)
    git_convoy("sync", "-q", cwd=lead)
    worker = tmp_path / "worker"
    git("clone", "-q", str(remote), str(worker))
    return lead, worker, plain, inner


def commit_and_push(worker: Path, branch: str, name: str) -> None:
    git("switch", "-q", branch, cwd=worker)
    (worker / name).write_text("work\n")
    git("add", name, cwd=worker)
    git("commit", "-q", "-m", f"work: {name}", cwd=worker)
    git("push", "-q", "origin", branch, cwd=worker)


def test_a_lander_on_one_clone_lands_work_queued_on_another(tmp_path: Path):
    lead, worker, plain, _ = two_clones_and_a_claimed_bead(tmp_path)
    claimed = json.loads(git_convoy("claim", "--json", "--as", "w", cwd=worker).stdout)
    assert claimed["bead"] == plain
    commit_and_push(worker, f"convoy/{plain}", "plain.txt")
    git_convoy("done", plain, cwd=worker)
    git_convoy("sync", "-q", cwd=worker)
    git_convoy("sync", "-q", cwd=lead)
    git("fetch", "-q", "origin", cwd=lead)  # the lander's clone even has origin/convoy/<id>
    out = git_convoy("refinery", "run", cwd=lead, check=False).stdout
    assert "orphaned" not in out and "landed as" in out, out


def test_done_on_a_clone_that_has_the_target_only_from_the_remote(tmp_path: Path):
    lead, worker, plain, inner = two_clones_and_a_claimed_bead(tmp_path)
    git_convoy("bead", "close", plain, "--reason", "not this one", cwd=lead)
    git_convoy("sync", "-q", cwd=lead)
    claimed = json.loads(git_convoy("claim", "--json", "--as", "w", cwd=worker).stdout)
    assert (claimed["bead"], claimed["target"]) == (inner, "integration/e")
    commit_and_push(worker, f"convoy/{inner}", "inner.txt")
    done = git_convoy("done", inner, cwd=worker, check=False)
    assert done.returncode == 0, done.stderr


def server_landed(tmp_path: Path, first_in_epic: bool) -> tuple[Path, Path, str, str, str]:
    """A lead clone with an epic (integration/e, pushed with upstream), a task `first` (in
    the epic, or on main) and `then` in the epic after it, a server-side lander; a worker
    clone claims `first`, pushes it and runs done, and the server lands it. The lead's own
    branches and remote-tracking refs never moved. (lead, remote, first, then, landed)."""
    remote, lead = remote_and_lead(tmp_path)
    git_convoy("init", "--prefix", "w", cwd=lead)
    git_convoy("rig", "add", "app", "--target", "main", cwd=lead)

    def create(*args: str) -> str:
        return git_convoy("bead", "create", *args, cwd=lead).stdout.strip()

    epic = create("epic", "--type", "epic")
    first = create("first", *(("--parent", epic) if first_in_epic else ()))
    then = create("then", "--parent", epic, "--dep", first)
    git_convoy("integration", "create", epic, "--name", "integration/e", cwd=lead)
    git("push", "-q", "-u", "origin", "integration/e", cwd=lead)
    git_convoy("create", "work", first, epic, then, cwd=lead)
    git_convoy("sync", "-q", cwd=lead)
    git_convoy("hooks", "install", "--server", cwd=remote)

    worker = tmp_path / "worker"
    git("clone", "-q", str(remote), str(worker))
    claimed = json.loads(git_convoy("claim", "--json", "--as", "w", cwd=worker).stdout)
    assert claimed["bead"] == first
    commit_and_push(worker, f"convoy/{first}", "first.txt")
    git_convoy("done", first, cwd=worker)
    git_convoy("sync", "-q", cwd=worker)
    log = remote / "convoy" / "refinery.log"
    wait_for(lambda: log.exists() and "1 of 1 landed" in log.read_text(),
             "the remote to land the first task")
    landed = git("rev-parse", "integration/e" if first_in_epic else "main", cwd=remote)
    git_convoy("sync", "-q", cwd=lead)
    return lead, remote, first, then, landed


def fed_and_shown(lead: Path, bead_id: str) -> tuple[str, dict]:
    out = git_convoy("feed", cwd=lead, check=False)
    shown = json.loads(git_convoy("bead", "show", bead_id, "--json", cwd=lead).stdout)
    assert shown["status"] == "hooked", out.stdout + out.stderr
    return out.stdout, shown


def test_an_integration_branch_catches_up_with_work_the_server_landed(tmp_path: Path):
    """Seen under load (tests/test_load.py stalled for 600 s): a task on `main` landed by the
    server's lander; the epic task after it waited for ever, because the clone's catch-up
    merged its own `main`, which never moved: "integration/ep1 waits: main lacks the landed
    work of k010 too". The catch-up asks the remote for the branch it merges."""
    lead, remote, _, then, landed = server_landed(tmp_path, first_in_epic=False)
    out, shown = fed_and_shown(lead, then)
    assert is_ancestor(lead, landed, shown["base_commit"])
    assert git("rev-parse", "integration/e", cwd=remote) == shown["base_commit"], out
    assert "integration/e: brought up to date with main" in out, out


def test_a_task_after_one_the_server_landed_on_its_own_epic_branch_is_dispatched(
        tmp_path: Path):
    """Seen under load (bench_load, 200 tasks: stuck at 47 landed): k133 landed on
    integration/ep1 by the server's lander; k181 (same epic, after k133) waited for ever —
    "integration/ep1 lacks the landed work of k133" — because no clone had fetched the
    integration branch since, and the catch-up only looked at main."""
    lead, _, _, then, landed = server_landed(tmp_path, first_in_epic=True)
    _, shown = fed_and_shown(lead, then)
    assert is_ancestor(lead, landed, shown["base_commit"])
