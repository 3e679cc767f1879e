"""`git convoy hooks install|uninstall|status` and `doctor` on real repositories.

What must hold: our block is appended to an existing hook (which keeps running first) and
removed exactly; files we created go away; the repository config returns byte-identical;
install twice writes nothing; core.hooksPath and linked worktrees are followed; a hook never
fails the git command, and its errors reach `doctor`.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import convoy, git, ok
from hypothesis import given, settings
from hypothesis import strategies as st

from gitconvoy.git import hookinstall, watch
from gitconvoy.state.store import Store

HOOK_NAMES = list(hookinstall.HOOKS)


def snapshot_files(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Content, mode and mtime of every file under `folder`."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st_ = path.stat()
            out[str(path.relative_to(folder))] = (path.read_bytes(), st_.st_mode, st_.st_mtime_ns)
    return out


def user_hook(path: Path, body: str, mode: int = 0o755) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(mode)
    return path.read_bytes()


def spy_python(tmp_path: Path) -> Path:
    """An 'interpreter' that records each call, then runs the real one: shows when a shim
    started Python."""
    spy = tmp_path / "spy-python"
    log = tmp_path / "spy.log"
    spy.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {sys.executable} "$@"\n')
    spy.chmod(0o755)
    return spy


def spy_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "spy.log"
    return log.read_text().splitlines() if log.exists() else []


# --- pure text planning -----------------------------------------------------------------


BLOCK = hookinstall.render_block("post-merge", "/usr/bin/python3")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("#!/bin/sh ec\nho'\"x$"), max_size=80))
def test_install_then_uninstall_restores_any_shell_text(original):
    text = "#!/bin/sh\n" + original
    installed = hookinstall.plan_install(text, BLOCK)
    assert installed is not None and installed.startswith(text)
    assert hookinstall.plan_install(installed, BLOCK) is None  # twice: nothing to write
    assert hookinstall.strip_block(installed) == text


def test_an_outdated_block_is_replaced_in_place_keeping_text_around_it():
    old = BLOCK.replace("exit 0", "exit 0 # old", 1)
    text = "#!/bin/sh\necho before\n" + old + "echo after\n"
    updated = hookinstall.plan_install(text, BLOCK)
    assert updated == "#!/bin/sh\necho before\n" + BLOCK + "echo after\n"


def test_shell_detection():
    assert hookinstall.is_shell_script("#!/bin/sh\n")
    assert hookinstall.is_shell_script("#!/usr/bin/env bash\nset -e\n")
    assert hookinstall.is_shell_script("echo no shebang: git runs it with sh\n")
    assert not hookinstall.is_shell_script("#!/usr/bin/env python3\nprint(1)\n")
    assert not hookinstall.is_shell_script("#!/usr/bin/perl\n")


# --- install / uninstall / status ---------------------------------------------------------


def test_install_creates_shims_settings_and_status_is_current(state_repo):
    config_before = (state_repo / ".git" / "config").read_bytes()
    out = ok("hooks", "install")
    hooks = state_repo / ".git" / "hooks"
    for name in HOOK_NAMES:
        path = hooks / name
        assert f"created {path}" in out
        assert path.stat().st_mode & stat.S_IXUSR
        assert path.read_text().startswith(hookinstall.CREATED_HEADER)
    assert git("config", "merge.convoy.driver") == "git convoy merge-driver %O %A %B %P"
    assert git("config", "--local", "--get-all", "include.path") == "convoy/config"
    status = json.loads(convoy("hooks", "status", "--json").out)
    assert status["current"] is True
    assert {h["state"] for h in status["hooks"].values()} == {"current"}
    watched = (state_repo / ".git" / "convoy" / "watch").read_text().splitlines()
    assert "refs/heads/convoy/state" in watched and "refs/remotes/*/convoy/*" in watched

    before = snapshot_files(state_repo / ".git" / "hooks")
    res = convoy("hooks", "install")
    assert res.code == 0 and "nothing to do" in res.out
    assert snapshot_files(state_repo / ".git" / "hooks") == before

    out = ok("hooks", "uninstall")
    for name in HOOK_NAMES:
        assert not (hooks / name).exists()
    assert (state_repo / ".git" / "config").read_bytes() == config_before
    assert not (state_repo / ".git" / "convoy" / "config").exists()
    assert not (state_repo / ".git" / "convoy" / "watch").exists()
    res = convoy("hooks", "status")
    assert res.code == 1 and "not installed" in res.out


def test_existing_hooks_keep_running_first_and_come_back_byte_identical(state_repo, tmp_path):
    hooks = state_repo / ".git" / "hooks"
    log = tmp_path / "user.log"
    originals = {
        "post-commit": user_hook(hooks / "post-commit", f"#!/bin/sh\necho user >> {log}\n"),
        # no trailing newline: the newline we add must go away again
        "post-merge": user_hook(hooks / "post-merge", "#!/bin/bash\nexit_code=0"),
        "post-checkout": user_hook(hooks / "post-checkout", "#!/bin/sh\n", 0o700),
    }
    out = ok("hooks", "install")
    for name, data in originals.items():
        text = (hooks / name).read_bytes()
        assert text.startswith(data), name
        assert f"appended a block to {hooks / name}" in out
    assert oct((hooks / "post-checkout").stat().st_mode & 0o777) == oct(0o700)

    git("commit", "-q", "--allow-empty", "-m", "x")
    assert log.read_text() == "user\n"

    ok("hooks", "uninstall")
    for name, data in originals.items():
        assert (hooks / name).read_bytes() == data, name
    assert oct((hooks / "post-checkout").stat().st_mode & 0o777) == oct(0o700)
    assert not (hooks / "reference-transaction").exists()


def test_a_hook_in_another_language_is_left_alone(state_repo):
    hooks = state_repo / ".git" / "hooks"
    data = user_hook(hooks / "post-merge", "#!/usr/bin/env python3\nprint('hi')\n")
    out = ok("hooks", "install")
    assert "skipped" in out and "not a shell script" in out
    assert (hooks / "post-merge").read_bytes() == data
    res = convoy("hooks", "status")
    assert res.code == 1 and "not a shell script" in res.out
    ok("hooks", "uninstall")
    assert (hooks / "post-merge").read_bytes() == data


def test_a_disabled_user_hook_is_not_activated(state_repo):
    hooks = state_repo / ".git" / "hooks"
    data = user_hook(hooks / "post-commit", "#!/bin/sh\necho disabled\n", 0o644)
    out = ok("hooks", "install")
    assert "not executable" in out
    assert (hooks / "post-commit").read_bytes() == data
    assert not os.access(hooks / "post-commit", os.X_OK)


@pytest.mark.parametrize("relative", [True, False])
def test_install_follows_core_hooks_path(state_repo, tmp_path, relative):
    target = state_repo / ".githooks" if relative else tmp_path / "shared-hooks"
    git("config", "core.hooksPath", ".githooks" if relative else str(target))
    (state_repo / "sub").mkdir()
    os.chdir(state_repo / "sub")  # git resolves a relative hooksPath from the top
    ok("hooks", "install")
    assert sorted(p.name for p in target.iterdir()) == sorted(HOOK_NAMES)
    assert not any((state_repo / ".git" / "hooks" / n).exists() for n in HOOK_NAMES)
    assert json.loads(convoy("hooks", "status", "--json").out)["directory"] == str(target)
    ok("hooks", "uninstall")
    assert list(target.iterdir()) == []


def test_uninstall_also_cleans_a_folder_used_before_hooks_path_changed(state_repo, tmp_path):
    ok("hooks", "install")
    git("config", "core.hooksPath", str(tmp_path / "elsewhere"))
    res = convoy("hooks", "status")
    assert "also installed in" in res.out
    ok("hooks", "uninstall")
    assert not any((state_repo / ".git" / "hooks" / n).exists() for n in HOOK_NAMES)


def test_linked_worktrees_share_the_hooks(state_repo, tmp_path):
    wt = tmp_path / "wt"
    git("worktree", "add", "-q", str(wt), "-b", "side")
    os.chdir(wt)
    out = ok("hooks", "install")
    assert str(state_repo / ".git" / "hooks" / "post-merge") in out
    assert (state_repo / ".git" / "convoy" / "watch").exists()
    os.chdir(state_repo)
    assert convoy("hooks", "status").code == 0


def test_outdated_shims_are_reported_and_updated(state_repo):
    ok("hooks", "install")
    path = state_repo / ".git" / "hooks" / "post-rewrite"
    path.write_text(path.read_text().replace("exit 0", "exit 0  # older shim", 1))
    res = convoy("hooks", "status")
    assert res.code == 1 and "outdated" in res.out
    assert f"updated the block in {path}" in ok("hooks", "install")
    assert convoy("hooks", "status").code == 0


# --- the shims at run time ----------------------------------------------------------------


def test_shims_start_python_only_when_a_watched_ref_moved(state_repo, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(spy_python(tmp_path)))
    ok("hooks", "install")
    git("commit", "-q", "--allow-empty", "-m", "unwatched main")  # main is no target yet
    git("switch", "-q", "-c", "side")
    git("commit", "-q", "--allow-empty", "-m", "side")
    git("switch", "-q", "main")
    git("rebase", "-q", "side")
    git("reset", "-q", "--hard", "HEAD~1")
    assert spy_calls(tmp_path) == []
    git("branch", "convoy/t-1")  # a work branch: reference-transaction wakes up
    assert spy_calls(tmp_path) == ["-P -m gitconvoy hook reference-transaction committed"]
    git("checkout", "-q", "convoy/t-1")  # nothing moved since that feed
    assert len(spy_calls(tmp_path)) == 1
    ok("bead", "create", "moves the state ref")  # libgit2: no hook; the next one sees it
    git("checkout", "-q", "main")
    calls = spy_calls(tmp_path)
    assert len(calls) == 2 and calls[1].startswith("-P -m gitconvoy hook post-checkout ")
    with monkeypatch.context() as m:
        m.setenv("CONVOY_IN_HOOK", "1")  # the re-entrancy guard
        git("branch", "convoy/t-2")
        ok("bead", "create", "again")
        git("checkout", "-q", "convoy/t-2")
    assert len(spy_calls(tmp_path)) == 2


def test_a_failing_hook_never_fails_git_and_is_recorded(state_repo, tmp_path, monkeypatch):
    broken = tmp_path / "broken-python"
    broken.write_text("#!/bin/sh\necho 'Traceback: boom' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(broken))
    ok("hooks", "install")
    proc = git_proc("branch", "convoy/t-9", cwd=state_repo)
    assert proc.returncode == 0
    assert "warning: gitconvoy: the reference-transaction hook failed (exit 3)" in proc.stderr
    proc = git_proc("checkout", "-q", "convoy/t-9", cwd=state_repo)
    assert proc.returncode == 0
    log = (state_repo / ".git" / "convoy" / "hook-errors.log").read_text().splitlines()
    assert log[0].endswith("reference-transaction exit 3")
    res = convoy("doctor")
    assert res.code == 0
    assert "warn  hook errors: " in res.out and "exit 3" in res.out
    convoy("doctor", "--clear-errors")
    assert "ok    hook errors: none recorded" in convoy("doctor").out


def test_the_hook_command_turns_errors_into_one_warning(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a repository: the hook still exits 0
    res = convoy("hook", "post-merge", "0")
    assert res.code == 0
    assert res.err.startswith("warning: gitconvoy: post-merge hook: not a git repository")
    assert len(res.err.splitlines()) == 1


def git_proc(*args: str, cwd: Path):
    import subprocess

    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


# --- doctor -------------------------------------------------------------------------------


def test_doctor_reports_each_check(state_repo):
    res = convoy("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(res.out)["checks"]}
    assert checks["hooks"]["level"] == "warn" and "hooks install" in checks["hooks"]["message"]
    assert checks["merge driver"]["level"] == "warn"
    assert checks["state"]["level"] == "ok"
    assert checks["remote"]["message"].startswith("no remote 'origin'")
    ok("hooks", "install")
    ok("rig", "add", "app", "--target", "main")
    res = convoy("doctor")
    assert res.code == 0
    lines = res.out.splitlines()
    assert lines[0].startswith("ok    hooks: 6 hooks installed and current")
    assert "ok    merge driver: registered: git convoy merge-driver %O %A %B %P" in lines
    assert any(ln.startswith("ok    config: rig app: target main") for ln in lines)
    assert not any("stale" in ln for ln in lines)
    watched = state_repo / ".git" / "convoy" / "watch"
    assert "refs/heads/main" not in watched.read_text()  # nothing in flight: main is inert
    bead = ok("bead", "create", "work")
    ok("sling", bead)  # a dispatch puts work in flight: its branch and target are watched
    assert {f"refs/heads/convoy/{bead}", "refs/heads/main", "refs/remotes/*/main"} <= set(
        watched.read_text().splitlines())
    watched.write_text("refs/heads/convoy/state\n")
    assert any("watch list is stale" in ln for ln in convoy("doctor").out.splitlines())
    ok("hooks", "install")
    assert not any("stale" in ln for ln in convoy("doctor").out.splitlines())


def test_doctor_fails_on_a_missing_state_ref_and_a_broken_file(repo):
    res = convoy("doctor")
    assert res.code == 1 and "fail  state: refs/heads/convoy/state does not exist" in res.out
    ok("init", "--prefix", "t")
    bead = ok("bead", "create", "soon broken")
    store = Store.open()
    store.transact(lambda tx: tx.changes.update(
        {next(p for p in _paths(store) if bead in p): b"title: [unclosed\n"}), "break a file")
    res = convoy("doctor")
    assert res.code == 1
    assert "fail  state: 1 broken state file(s): beads/" in res.out


def _paths(store: Store) -> list[str]:
    return git("ls-tree", "-r", "--name-only", store.ref).splitlines()


def test_doctor_compares_with_the_remote_copy_of_the_state(state_repo, tmp_path):
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote))
    git("remote", "add", "origin", str(remote))
    assert "warn  remote: origin has no state branch" in convoy("doctor").out
    git("push", "-q", "origin", "convoy/state")
    git("fetch", "-q", "origin")
    assert "ok    remote: in sync with refs/remotes/origin/convoy/state" in convoy("doctor").out
    ok("bead", "create", "local only")
    assert "1 state commit(s) not on origin yet" in convoy("doctor").out


def test_watch_patterns_cover_targets_work_branches_and_remote_copies():
    patterns = watch.watch_patterns("refs/heads/convoy/state", None)
    assert patterns == ["refs/heads/convoy/*", "refs/heads/convoy/state",
                        "refs/remotes/*/convoy/*", "refs/remotes/*/convoy/state"]


def test_a_feed_marked_due_runs_on_the_next_hook_once(state_repo, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(spy_python(tmp_path)))
    ok("hooks", "install")
    git("checkout", "-q", "-b", "side")
    assert spy_calls(tmp_path) == []
    watch.mark_feed_due(str(state_repo / ".git"))  # what the merge driver leaves behind
    git("checkout", "-q", "main")
    assert len(spy_calls(tmp_path)) == 1
    assert not (state_repo / ".git" / "convoy" / watch.FEED_DUE_FILE).exists()
    git("checkout", "-q", "side")
    assert len(spy_calls(tmp_path)) == 1


def test_gate_logic_is_pure_and_conservative():
    from gitconvoy.git import hookgate

    record = hookgate.InFlight({"main"}, {"t-a": ("refs/heads/convoy/t-a", "b" * 40)})
    assert hookgate.InFlight.parse(record.render()) == record
    assert hookgate.is_target("refs/heads/main", {"main"})
    assert hookgate.is_target("refs/remotes/origin/main", {"main"})
    assert not hookgate.is_target("refs/heads/convoy/state", {"main"})
    assert hookgate.moved_refs({"r1": "a", "r2": "b"}, {"r1": "a", "r2": "c", "r3": "d"}) == {
        "r2", "r3"}
    now = {"refs/heads/convoy/t-a": "c" * 40}
    assert hookgate.landed_any(record, now, {"c" * 40}, "")
    assert not hookgate.landed_any(record, now, {"d" * 40}, "merge x\n")
    assert hookgate.landed_any(record, now, set(), "Squash\n\nConvoy-Bead: t-a\n")
    assert not hookgate.landed_any(record, now, set(), "Convoy-Bead: t-other\n")
    pushed = {"refs/heads/convoy/t-a": "b" * 40, "refs/remotes/origin/convoy/t-a": "e" * 40}
    assert hookgate.landed_any(record, pushed, {"e" * 40}, "")  # a worker elsewhere pushed
    fresh = {"refs/heads/convoy/t-a": "b" * 40}  # no commits of its own: not landed
    assert not hookgate.landed_any(record, fresh, {"b" * 40}, "")
