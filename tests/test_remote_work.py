"""Work done on another machine: a worker pushes its branch, a forge merges it, and the
orchestrator's clone sees it land after a plain `git fetch`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git, git_convoy


def test_pushed_work_branch_merged_on_the_remote_lands_after_fetch(tmp_path: Path):
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    lead = tmp_path / "lead"
    git("clone", "-q", str(remote), str(lead))
    (lead / "README").write_text("app\n")
    git("add", "README", cwd=lead)
    git("commit", "-q", "-m", "initial", cwd=lead)
    git("push", "-q", "origin", "main", cwd=lead)
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
