"""`git convoy demo`: a plan goes from an epic to landed branches in a sample repository.

Every step is a real `git` or `git convoy` command run in a fresh repository, printed as a
user would type it, so the demo doubles as a tour.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap

import click

WORKER = textwrap.dedent("""\
    #!/bin/sh
    # A stand-in for a coding agent: it writes one file on its work branch and commits.
    set -e
    wt="$(git rev-parse --git-common-dir)/convoy/worktrees/$CONVOY_BEAD"
    git worktree add -q "$wt" "$CONVOY_BRANCH"
    cd "$wt"
    printf '%s\\n' "$CONVOY_TITLE" > "$CONVOY_BEAD.txt"
    git add "$CONVOY_BEAD.txt"
    git commit -q -m "$CONVOY_TITLE" -m "Convoy-Bead: $CONVOY_BEAD"
    """)

CHECK = "#!/bin/sh\n# The rig's check: every landed tree must hold a README.\ntest -f README\n"


class Demo:
    def __init__(self, root: str) -> None:
        self.repo = os.path.join(root, "app")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("GIT_") and k != "CONVOY_IN_HOOK"}
        self.env.update(GIT_AUTHOR_NAME="Demo", GIT_AUTHOR_EMAIL="demo@example.com",
                        GIT_COMMITTER_NAME="Demo", GIT_COMMITTER_EMAIL="demo@example.com")

    def run(self, *args: str, show: bool = True, quiet: bool = False) -> str:
        if show:
            click.secho(f"$ {shlex.join(args)}", fg="cyan", bold=True)  # pasteable
        proc = subprocess.run(list(args), cwd=self.repo, env=self.env, capture_output=True,
                              text=True)
        out = proc.stdout.strip()
        if proc.returncode != 0:
            click.echo(proc.stdout + proc.stderr, err=True)
            raise SystemExit(f"demo step failed: {shlex.join(args)}")
        if show and out and not quiet:
            click.echo(textwrap.indent(out, "  "))
        return out

    def bead(self, *args: str) -> str:
        return self.run("git", "convoy", "bead", "create", *args)


def run_demo(root: str, report: str) -> None:
    """The tour, in a sample repository under `root`; the HTML report goes to `report`."""
    d = Demo(root)
    os.makedirs(d.repo)
    click.secho(f"# a sample repository in {d.repo}", fg="yellow")
    d.run("git", "init", "-q", "-b", "main", show=False)
    with open(os.path.join(d.repo, "README"), "w") as fh:
        fh.write("sample app\n")
    d.run("git", "add", "README", show=False)
    d.run("git", "commit", "-q", "-m", "initial", show=False)
    for name, text in (("worker.sh", WORKER), ("check.sh", CHECK)):
        path = os.path.join(root, name)
        with open(path, "w") as fh:
            fh.write(text)
        os.chmod(path, 0o755)

    click.secho("\n# 1. the plan: an epic, two sub-epics (B waits for A), five tasks", fg="yellow")
    d.run("git", "convoy", "init", "--prefix", "app")
    d.run("git", "convoy", "rig", "add", "app", "--target", "main", "--capacity", "2")
    d.run("git", "config", "convoy.rig.app.dispatch", os.path.join(root, "worker.sh"))
    d.run("git", "config", "convoy.rig.app.check", os.path.join(root, "check.sh"))
    root_epic = d.bead("--type", "epic", "Auth overhaul")
    part_a = d.bead("--type", "epic", "Sessions", "--parent", root_epic)
    part_b = d.bead("--type", "epic", "Login UI", "--parent", root_epic)
    d.run("git", "convoy", "dep", "add", part_b, part_a)
    a1 = d.bead("Fix session timeout", "--parent", part_a, "-p", "1")
    d.bead("Rotate session keys", "--parent", part_a, "--dep", a1)
    d.bead("Session metrics", "--parent", part_a)
    d.bead("Login form validation", "--parent", part_b)
    d.bead("Remember-me checkbox", "--parent", part_b)
    d.run("git", "convoy", "ready")
    if have_refinery := _has_refinery():
        click.secho("\n# Sessions gets an integration branch: its tasks land there first",
                    fg="yellow")
        d.run("git", "convoy", "integration", "create", part_a)

    click.secho("\n# 2. stage: the tree, the waves, the warnings", fg="yellow")
    staged = d.run("git", "convoy", "stage", root_epic)
    convoy_id = staged.rsplit("launch it with: git convoy launch ", 1)[1].split()[0]

    click.secho("\n# 3. launch: wave 1 is dispatched to the workers now", fg="yellow")
    d.run("git", "convoy", "launch", convoy_id, "--force")

    click.secho("\n# 4. work lands, the feeder hands out the next wave", fg="yellow")
    for _ in range(12):
        flying = _in_flight(d)
        if not flying and have_refinery and _epic_status(d, part_a) == "in_progress":
            click.secho("\n# every task of Sessions is in its integration branch: land it",
                        fg="yellow")
            d.run("git", "convoy", "integration", "land", part_a)
            d.run("git", "convoy", "feed")
            flying = _in_flight(d)
        if not flying:
            break
        if have_refinery:
            for bead_id in flying:
                d.run("git", "convoy", "done", bead_id, "--branch", f"convoy/{bead_id}",
                      quiet=True)
            d.run("git", "convoy", "refinery", "run")
        else:
            for bead_id in flying:
                d.run("git", "merge", "-q", "--no-edit", f"convoy/{bead_id}")
            d.run("git", "convoy", "feed")

    click.secho("\n# 5. the convoy has landed", fg="yellow")
    d.run("git", "convoy", "status", convoy_id)
    d.run("git", "log", "--oneline", "--graph", "-12", "main")
    d.run("git", "log", "--oneline", "-8", "convoy/state")

    click.secho("\n# 6. a page to look at: the plan's picture, its beads and its history",
                fg="yellow")
    d.run("git", "convoy", "report", convoy_id, "--html", report)
    click.secho(f"open {report}", fg="green", bold=True)


def _in_flight(d: Demo) -> list[str]:
    import json

    beads = json.loads(d.run("git", "convoy", "bead", "list", "--json", show=False))
    return [b["id"] for b in beads
            if b["status"] in ("hooked", "in_progress") and b["type"] != "epic"]


def _epic_status(d: Demo, epic: str) -> str:
    import json

    return json.loads(d.run("git", "convoy", "bead", "show", epic, "--json", show=False))[
        "status"]


def _has_refinery() -> bool:
    import importlib.util

    return importlib.util.find_spec("gitconvoy.commands.refinery") is not None \
        and os.environ.get("CONVOY_DEMO_MERGE") is None


@click.command()
@click.option("--keep", is_flag=True, help="Keep the sample repository and print its path.")
def demo(keep: bool) -> int:
    """Show a convoy from plan to landed branches in a throwaway sample repository."""
    root = tempfile.mkdtemp(prefix="convoy-demo-")
    # the page outlives the sample repository, which is removed unless --keep
    report = os.path.join(tempfile.mkdtemp(prefix="convoy-demo-report-"), "report.html")
    try:
        run_demo(root, report)
    finally:
        if keep:
            click.secho(f"\nthe sample repository is kept in {root}/app", fg="yellow")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(demo())
