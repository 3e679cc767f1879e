"""Colour for people on a terminal, never for scripts (issue 14, item 3; decision 21)."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from conftest import convoy, git, ok
from hypothesis import given
from hypothesis import strategies as st

from gitconvoy.render.paint import paint, strip

ESC = "\x1b["


def test_glyphs_prefixes_and_status_columns_are_coloured_titles_are_not():
    assert paint("✓ t-1: landed in main") == "\x1b[32m✓\x1b[m t-1: landed in main"
    assert paint("error: bad").startswith("\x1b[1;31merror:\x1b[m")
    listed = paint("t-1        P2 task     closed      Alpha")
    assert "\x1b[32mclosed\x1b[m" in listed
    # the status column comes first: a title after it is never searched
    assert paint("t-2        P2 task     open        x  closed") == \
        "t-2        P2 task     open        x  closed"
    # the tree view's "(status)" follows the title: the last one is the status
    tree = paint("  ○ t-3  task  P2  Alpha (closed)  (hooked)  [wave 1]")
    assert "(\x1b[33mhooked\x1b[m)" in tree and "Alpha (closed)" in tree
    assert paint("nothing to colour here") == "nothing to colour here"


@given(st.text())
def test_colour_only_adds_codes(line: str):
    assert strip(paint(line.replace("\x1b", ""))) == line.replace("\x1b", "")


def test_a_pipe_gets_no_colour_unless_asked(state_repo: Path):
    bead = ok("bead", "create", "Alpha")
    ok("bead", "close", bead)
    assert ESC not in convoy("bead", "list", "--all").out
    asked = convoy("bead", "list", "--all", "--color=always").out
    assert "\x1b[32mclosed\x1b[m" in asked
    assert ESC in convoy("--color", "always", "bead", "list", "--all").out
    assert ESC not in convoy("bead", "list", "--all", "--color=always", "--no-color").out
    shown = convoy("bead", "show", bead, "--json", "--color=always").out
    assert ESC not in shown  # JSON never


def test_a_bad_when_is_a_usage_error_in_one_line(state_repo: Path):
    res = convoy("ready", "--color=sometimes")
    assert res.code == 2
    assert res.err.strip() == "error: --color takes auto, always or never, not 'sometimes'"


def test_an_error_line_is_coloured_when_asked_and_the_state_cannot_inject_codes(state_repo):
    res = convoy("bead", "show", "nosuch", "--color=always")
    assert res.err.startswith("\x1b[1;31merror:\x1b[m unknown bead")
    hostile = ok("bead", "create", "evil \x1b[31mred")
    listed = convoy("bead", "list", "--color=always").out
    assert "\x1b[31mred" not in listed and "\\x1b[31mred" in listed, (hostile, listed)


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str] | None = None, *,
                  stderr_too: bool = False) -> str:
    """What `git convoy ARGS` prints when its stdout (and with `stderr_too` its stderr, as a
    person sees both) is a real terminal (a pty)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(["git", "convoy", *args], cwd=cwd, stdout=follower,
                            stderr=follower if stderr_too else subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL,
                            env={**os.environ, "TERM": "xterm", **(env or {})})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other side closed (EIO on Linux)
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode()


def test_a_terminal_is_coloured_unless_no_color_or_git_config_says_never(state_repo: Path):
    bead = ok("bead", "create", "Alpha")
    ok("bead", "close", bead)
    for warm in range(2):  # the second `ready`-like read may come from the warm answer
        assert "\x1b[32mclosed\x1b[m" in on_a_terminal(["bead", "list", "--all"], state_repo), warm
    assert ESC not in on_a_terminal(["bead", "list", "--all"], state_repo, {"NO_COLOR": "1"})
    assert ESC not in on_a_terminal(["bead", "list", "--all"], state_repo, {"TERM": "dumb"})
    git("config", "color.ui", "false", cwd=state_repo)
    assert ESC not in on_a_terminal(["bead", "list", "--all"], state_repo)
    git("config", "color.convoy", "auto", cwd=state_repo)  # ours wins over color.ui
    assert ESC in on_a_terminal(["bead", "list", "--all"], state_repo)
    # the command line wins over both
    assert ESC not in on_a_terminal(["bead", "list", "--all", "--no-color"], state_repo)


def test_the_warm_read_is_coloured_as_the_full_one(state_repo: Path):
    ok("bead", "close", ok("bead", "create", "Alpha"))
    ok("bead", "create", "Beta")
    cold = on_a_terminal(["bead", "list", "--all"], state_repo)
    warm = on_a_terminal(["bead", "list", "--all"], state_repo)
    assert "\x1b[32mclosed\x1b[m" in cold and cold == warm


def plan_file(folder: Path, tasks: int) -> Path:
    path = folder / "plan.yaml"
    lines = ["epic:", "  title: Big", "  tasks:"] + [f"    - title: Task {n}"
                                                     for n in range(tasks)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_long_work_shows_progress_on_a_terminal_and_wipes_it(state_repo: Path):
    plan = plan_file(state_repo.parent, 50)
    seen = on_a_terminal(["import", str(plan)], state_repo, {"CONVOY_PROGRESS_DELAY": "0"},
                         stderr_too=True)
    assert "import: " in seen and "writing 51 beads" in seen, seen
    # the bar is wiped before the command's own lines, which read as they would in a pipe
    last_wipe = seen.rindex("\r\x1b[K")
    assert "import: " not in seen[last_wipe:]


def test_no_progress_on_a_pipe(state_repo: Path):
    plan = plan_file(state_repo.parent, 50)
    res = subprocess.run(["git", "convoy", "import", str(plan)], cwd=state_repo,
                         capture_output=True, text=True,
                         env={**os.environ, "CONVOY_PROGRESS_DELAY": "0"})
    assert res.returncode == 0, res.stderr
    assert "\r" not in res.stderr + res.stdout and ESC not in res.stderr
