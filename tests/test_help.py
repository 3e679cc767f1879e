"""Help: `git convoy -h` and `git-convoy --help` print click's help; `git convoy --help`
(which git turns into `man git-convoy`) shows the generated man page."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from conftest import ENTRY_POINT, git_convoy, in_ci, scripts_folder

from gitconvoy import manpage
from gitconvoy.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "man" / "git-convoy.1"


def visible_commands() -> list[str]:
    ctx = click.Context(cli, info_name="git convoy")
    return [n for n in cli.list_commands(ctx) if not cli.get_command(ctx, n).hidden]  # type: ignore[union-attr]


def command_paths() -> list[str]:
    ctx = click.Context(cli, info_name="git convoy")
    return [c.command_path for cmd, c in manpage.walk(cli, ctx)
            if not isinstance(cmd, click.Group)]


def assert_click_help(text: str) -> None:
    assert text.startswith("Usage: git convoy [OPTIONS] COMMAND [ARGS]...")
    listed = re.findall(r"^  ([a-z-]+) ", text.split("Commands:")[1], re.M)
    assert listed == visible_commands()


def test_git_convoy_dash_h_prints_click_help(tmp_path):
    assert_click_help(git_convoy("-h", cwd=tmp_path).stdout)


def test_git_dash_convoy_dash_dash_help_prints_click_help(tmp_path):
    exe = str(scripts_folder() / ENTRY_POINT)
    proc = subprocess.run([exe, "--help"], cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    assert_click_help(proc.stdout.replace("Usage: git-convoy", "Usage: git convoy"))


def test_subcommand_help(tmp_path):
    out = git_convoy("bead", "create", "-h", cwd=tmp_path).stdout
    assert out.startswith("Usage: git convoy bead create [OPTIONS] [TITLE]")
    assert "--batch" in out and "--json" in out


def skip_without_man(reason: str) -> None:
    """Locally a missing or odd man(1) skips with its reason; CI installs man-db, so there
    the same finding is a failure, never a silent skip."""
    if in_ci():
        pytest.fail(f"{reason}: CI must run the man-page test (.ci/run installs man-db)")
    pytest.skip(reason)


def test_git_convoy_dash_dash_help_opens_the_man_page(tmp_path):
    if shutil.which("man") is None:
        skip_without_man("man(1) is not installed here (apt-get install man-db)")
    man1 = tmp_path / "man" / "man1"
    man1.mkdir(parents=True)
    shutil.copy(PAGE, man1 / "git-convoy.1")
    env = {"MANPATH": str(tmp_path / "man"), "MANPAGER": "cat", "PAGER": "cat",
           "MANWIDTH": "100", "GIT_PAGER": "cat"}
    env.pop("MANOPT", None)
    proc = git_convoy("--help", cwd=tmp_path, env=env, check=False)
    if "No manual entry" in proc.stderr and os.environ.get("MANPATH") is None:
        skip_without_man(f"man ignores MANPATH here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert "GIT-CONVOY(1)" in proc.stdout
    assert "git convoy bead create [OPTIONS] [TITLE]" in proc.stdout
    assert "EXIT STATUS" in proc.stdout


def test_the_man_page_covers_every_command():
    """man/git-convoy.1 is generated: `python -m gitconvoy.manpage man/git-convoy.1`."""
    fresh = manpage.render(cli)
    paths = command_paths()
    assert {p.split()[2] for p in paths} == set(visible_commands())
    committed = PAGE.read_text()
    for path in paths:
        assert f'.SS "{manpage.roff(path)} ' in fresh
        assert f'.SS "{manpage.roff(path)} ' in committed, (
            f"man/git-convoy.1 lacks {path}: run python -m gitconvoy.manpage man/git-convoy.1")


def test_roff_escapes():
    assert manpage.roff("a-b \\ c\n.dot\n'quote") == "a\\-b \\e c\n\\&.dot\n\\&'quote"


def test_version(tmp_path):
    from gitconvoy import __version__

    assert git_convoy("--version", cwd=tmp_path).stdout == f"git-convoy, version {__version__}\n"
